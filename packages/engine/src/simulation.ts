import { setTimeout as sleep } from "node:timers/promises";
import { CONVERGENCE_STEPS, measureConvergence, type Convergence } from "./convergence.ts";
import { BRANCH_DEPTH, decisionPoints, forwardEvents, modePlan, type StepMeta } from "./modes.ts";
import { describeEvent, type Narrator } from "./narrate.ts";
import { tokensToMicros } from "./pricing.ts";
import { capResult } from "./result-cap.ts";
import { createRng, deriveSeed, hashString, round3, type Rng } from "./rng.ts";
import { castFor, scenarioFor, type CastMember, type Scenario } from "./scenarios/index.ts";
import { writeSummary } from "./summary.ts";
import { modeExtras, type Branch, type Timepoint } from "./result-shape.ts";
import type { RunContext, RunOutcome, SimulationResultPayload, SimulationSpec } from "./types.ts";
import { cloneWorld, initialWorld, type EventKind, type PlannedEvent, type World } from "./world.ts";

/** A narrator failure that should end the run as `failed` (the LLM engine's HTTP errors). */
export class NarrationError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface LoopOptions {
  narrator: Narrator;
  usdPerMillion: number;
  model: string;
}

/** Past this many serialized bytes, later timepoints drop their dialog so the result stays under its cap. */
const SOFT_CAP_BYTES = 768 * 1024;

export const runSeed = (spec: SimulationSpec): number => (typeof spec.config["seed"] === "number" ? spec.config["seed"] : hashString(spec.jobId));

interface Run {
  spec: SimulationSpec;
  sc: Scenario;
  members: CastMember[];
  opts: LoopOptions;
  tokens: number;
  bytes: number;
}

const stateOf = (w: World, i: number) => {
  const e = w.entities[i]!;
  return { entity_id: `e${i + 1}`, mood: round3(e.mood), stance: round3(e.stance), resources: Math.round(e.resources) };
};

async function timepoint(run: Run, meta: StepMeta, events: PlannedEvent[], w: World, branchId: string, rng: Rng, heading: string): Promise<Timepoint> {
  const names = run.members.map((m) => m.name);
  const recs = events.map((ev, i) => ({
    event_id: `${branchId}:T${meta.index}:${i + 1}`,
    kind: ev.kind,
    actor: `e${ev.actor + 1}`,
    target: `e${ev.target + 1}`,
    topic: ev.topic,
    description: describeEvent(ev.kind, names[ev.actor]!, names[ev.target]!, ev.topic, ev.incident, rng),
  }));
  const talk = run.bytes > SOFT_CAP_BYTES ? 0 : run.sc.talk;
  const said = await run.opts.narrator.narrate({ scenario: run.sc, members: run.members, heading, events: recs, world: w, talk, rng });
  run.tokens += said.tokens;
  const changes = events
    .filter((ev) => ev.actor !== ev.target)
    .map((ev, i) => ({
      source: `e${ev.actor + 1}`,
      target: `e${ev.target + 1}`,
      cause: recs[i]!.event_id,
      trust_change: ev.delta.trust,
      tension_change: ev.delta.tension,
      trust: round3(w.trust[ev.actor]![ev.target]!),
      tension: round3(w.tension[ev.actor]![ev.target]!),
    }));
  const tp: Timepoint = {
    timepoint_id: `${branchId}:T${meta.index}`,
    index: meta.index,
    label: meta.label,
    branch_id: branchId,
    ...(meta.act ? { act: meta.act } : {}),
    ...(meta.phase ? { phase: meta.phase, cycle: meta.cycle } : {}),
    events: recs,
    dialog: said.dialog,
    states: w.entities.map((_, i) => stateOf(w, i)),
    relationship_changes: changes,
    narrative: said.narrative,
    tokens: said.tokens,
  };
  run.bytes += JSON.stringify(tp).length;
  return tp;
}

/** Alternatives from a decision point: same starting state, a different first move, a few steps on. */
async function openBranches(
  run: Run,
  seed: number,
  before: World,
  k: number,
  mainKind: EventKind | undefined,
  plan: ReturnType<typeof modePlan>,
): Promise<Branch[]> {
  const out: Branch[] = [];
  const n = run.spec.timepointCount;
  for (let a = 1; a <= run.sc.alternatives; a++) {
    const w = cloneWorld(before);
    const rng = createRng(deriveSeed(seed, `branch:${k}:${a}`));
    const id = `b${k}.${a}`;
    const tps: Timepoint[] = [];
    for (let step = k; step < k + Math.min(BRANCH_DEPTH, n - k + 1); step++) {
      const events = step === k ? forwardEvents(w, rng, run.sc, (kind) => (kind === mainKind ? 0.02 : 1)) : plan.advance(w, rng, step);
      tps.push(await timepoint(run, { index: step, label: `T${step} (branch ${id})` }, events, w, id, rng, `T${step}, branch ${id} of ${run.sc.title}`));
    }
    const first = tps[0]?.events[0]?.description ?? "events take another turn";
    out.push({ branch_id: id, from_timepoint: k, decision: `What if: ${first}`, timepoints: tps, final_states: w.entities.map((_, i) => stateOf(w, i)) });
  }
  return out;
}

export async function runSimulation(spec: SimulationSpec, ctx: RunContext, opts: LoopOptions): Promise<RunOutcome> {
  const seed = runSeed(spec);
  const sc = scenarioFor(spec.templateId, spec.description);
  const members = castFor(sc, spec.entityCount, seed);
  const run: Run = { spec, sc, members, opts, tokens: 0, bytes: 0 };
  const n = spec.timepointCount,
    mode = spec.temporalMode;
  const rng = createRng(deriveSeed(seed, "main"));
  const world = initialWorld(members, createRng(deriveSeed(seed, "world")));
  // PORTAL starts from where things ended up: let the opening state play out unseen first.
  if (mode === "PORTAL") for (let k = 0; k < n; k++) forwardEvents(world, rng, sc);
  const start = cloneWorld(world);
  const plan = modePlan(mode, sc, n);
  const decisions = new Set(mode === "BRANCHING" ? decisionPoints(n) : []);
  const convFrom = Math.max(1, n - CONVERGENCE_STEPS + 1);
  let convBefore = world;
  const timepoints: Timepoint[] = [];
  const branches: Branch[] = [];
  let summary: string | null = null;
  let convergence: Convergence | null = null;
  const spend = (steps: number) => ({ steps, tokens: run.tokens, costMicros: tokensToMicros(run.tokens, opts.usdPerMillion) });

  for (let k = 1; k <= n; k++) {
    if (ctx.stepDelayMs > 0) await sleep(ctx.stepDelayMs);
    if (k === convFrom) convBefore = cloneWorld(world);
    const before = decisions.has(k) ? cloneWorld(world) : null;
    try {
      const meta = plan.meta(k);
      const events = plan.advance(world, rng, k);
      const heading = mode === "PORTAL" && k === 1 ? `${meta.label}: ${sc.endState}.` : `${meta.label}, ${sc.title}`;
      timepoints.push(await timepoint(run, meta, events, world, "main", rng, heading));
      if (before) branches.push(...(await openBranches(run, seed, before, k, events[0]?.kind, plan)));
    } catch (err) {
      if (err instanceof NarrationError) return { kind: "failed", ...spend(k - 1), errorMessage: err.message };
      throw err;
    }
    if (k === n) {
      convergence = measureConvergence(plan, convBefore, world, convFrom, n, seed);
      if (spec.generateSummaries) {
        const chrono = mode === "PORTAL" ? [...timepoints].reverse() : timepoints;
        summary = writeSummary({
          scenario: sc,
          members,
          mode,
          world: mode === "PORTAL" ? start : world,
          events: chrono.flatMap((t) => t.events.map((e) => e.description)),
          convergence,
          modeNote: modeNote(mode, n, branches.length),
        });
        run.tokens += opts.narrator.summaryTokens(summary);
      }
    }
    await ctx.onStep({ step: k, totalSteps: n, label: `timepoint ${k}/${n}`, ...spend(k) });
    if (k < n && (await ctx.shouldStop())) return { kind: "interrupted", ...spend(k) };
  }

  // In PORTAL order the walk ends at the origin, so chronology runs origin -> end.
  const [first, last] = mode === "PORTAL" ? [world, start] : [start, world];
  const result: SimulationResultPayload = {
    template_id: spec.templateId,
    title: sc.title,
    setting: sc.setting,
    question: sc.question,
    temporal_mode: mode,
    seed,
    model: opts.model,
    entities: members.map((m, i) => ({
      entity_id: `e${i + 1}`,
      name: m.name,
      role: m.role,
      goal: m.goal,
      traits: m.traits,
      description: `${m.name}, ${m.role}, wants to ${m.goal}.`,
      initial_state: stateOf(first, i),
      final_state: stateOf(last, i),
    })),
    timepoints,
    relationships: relationships(members, first, last),
    summary,
    convergence_score: convergence?.score ?? null,
    robustness_grade: convergence?.grade ?? null,
    convergence,
    ...modeExtras(mode, sc, n, timepoints, branches, decisions, first, stateOf),
    truncated: false,
  };
  return { kind: "completed", ...spend(n), result: capResult(result) };
}

function relationships(members: CastMember[], first: World, last: World) {
  const out = [];
  for (let i = 0; i < members.length; i++)
    for (let j = i + 1; j < members.length; j++) {
      const trust = round3(last.trust[i]![j]!),
        tension = round3(last.tension[i]![j]!);
      const label = trust > 0.4 && tension < 0.3 ? "allies" : tension > 0.55 ? "rivals" : trust < 0 ? "wary" : "neutral";
      out.push({
        source: `e${i + 1}`,
        target: `e${j + 1}`,
        trust,
        tension,
        label,
        trust_change: round3(trust - first.trust[i]![j]!),
        tension_change: round3(tension - first.tension[i]![j]!),
      });
    }
  return out;
}

function modeNote(mode: string, n: number, branches: number): string {
  if (mode === "PORTAL") return `It was read backward, from the end state to its origin over ${n} timepoint(s).`;
  if (mode === "BRANCHING") return `Besides the main line, ${branches} alternative branch(es) were explored.`;
  if (mode === "CYCLICAL") return "Its states recur with the period of its cycle.";
  if (mode === "DIRECTORIAL") return "Its events were steered along a setup, rising action, climax and resolution.";
  return `It ran forward over ${n} timepoint(s).`;
}
