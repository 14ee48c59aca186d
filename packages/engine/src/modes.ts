import { clamp, type Rng } from "./rng.ts";
import type { Scenario } from "./scenarios/index.ts";
import type { TemporalMode } from "./types.ts";
import { applyDelta, cloneWorld, eventsPerStep, meanTension, planEvent, TENSION_SIGN, type EventKind, type PlannedEvent, type World } from "./world.ts";

export const ACTS = ["setup", "rising action", "climax", "resolution"] as const;
export type Act = (typeof ACTS)[number];
/** The mean tension a DIRECTORIAL run steers toward in each act: the classic arc's shape. */
export const ACT_TENSION: Record<Act, number> = { setup: 0.2, "rising action": 0.5, climax: 0.9, resolution: 0.2 };
const SHORT_ARCS: Record<number, Act[]> = { 1: ["climax"], 2: ["setup", "climax"], 3: ["setup", "climax", "resolution"] };

/** Timepoint i (1-based) of n: short runs keep the climax, long ones spread the four acts evenly. */
export function actFor(i: number, n: number): Act {
  return SHORT_ARCS[n]?.[i - 1] ?? ACTS[Math.min(3, Math.floor(((i - 1) * 4) / n))]!;
}

const DEFAULT_PHASES = ["calm", "pressure", "crisis", "recovery"];
/** Which event kinds each phase of a cycle favours; named phases reuse these by position. */
const PHASE_KINDS: EventKind[][] = [
  ["alliance", "breakthrough"],
  ["revelation", "conflict"],
  ["setback", "conflict"],
  ["concession", "alliance"],
];

export function cyclePhases(sc: Scenario, timepoints: number): string[] {
  return sc.phases ?? DEFAULT_PHASES.slice(0, clamp(Math.floor(timepoints / 2), 2, 4));
}

/** Where a step sits in time; PORTAL counts down from the end. */
export interface StepMeta {
  index: number;
  label: string;
  act?: Act;
  phase?: string;
  cycle?: number;
}

/** One temporal mode: how step k moves the world and how it is labelled. */
export interface ModePlan {
  meta(step: number): StepMeta;
  /** Plans and applies step k's events to `w` (state only; narration comes later). */
  advance(w: World, rng: Rng, step: number): PlannedEvent[];
}

const steerBy = (want: number) => (k: EventKind) => Math.max(0.05, 1 + 3 * want * TENSION_SIGN[k]);

export function forwardEvents(w: World, rng: Rng, sc: Scenario, steer?: (k: EventKind) => number): PlannedEvent[] {
  const out: PlannedEvent[] = [];
  for (let e = 0; e < eventsPerStep(w.entities.length); e++) {
    const ev = planEvent(w, rng, sc, steer);
    applyDelta(w, ev, 1);
    out.push(ev);
  }
  return out;
}

export function modePlan(mode: TemporalMode, sc: Scenario, n: number): ModePlan {
  switch (mode) {
    case "FORWARD":
    case "BRANCHING":
      return { meta: (k) => ({ index: k, label: `T${k}` }), advance: (w, rng) => forwardEvents(w, rng, sc) };
    case "DIRECTORIAL":
      return {
        meta: (k) => ({ index: k, label: `T${k} (${actFor(k, n)})`, act: actFor(k, n) }),
        advance: (w, rng, k) => forwardEvents(w, rng, sc, steerBy(ACT_TENSION[actFor(k, n)] - meanTension(w))),
      };
    case "PORTAL":
      return {
        meta: (k) => ({ index: n - k + 1, label: k === 1 ? `T${n} (end state)` : `T${n - k + 1} (antecedent)` }),
        advance: (w, rng) => portalEvents(w, rng, sc),
      };
    case "CYCLICAL":
      return cyclicalPlan(sc, n);
  }
}

/**
 * PORTAL walks backward: pick events that would explain the present (a tense
 * present suggests a conflict just before), then subtract their effects to get
 * the state one timepoint earlier.
 */
function portalEvents(w: World, rng: Rng, sc: Scenario): PlannedEvent[] {
  const out: PlannedEvent[] = [];
  const steer = steerBy(meanTension(w) - 0.3);
  for (let e = 0; e < eventsPerStep(w.entities.length); e++) out.push(planEvent(w, rng, sc, steer));
  for (const ev of [...out].reverse()) applyDelta(w, ev, -1);
  return out;
}

/**
 * CYCLICAL: the first pass through each phase records its state; later passes
 * are pulled most of the way back to it, so states recur with the phase period.
 */
function cyclicalPlan(sc: Scenario, n: number): ModePlan {
  const phases = cyclePhases(sc, n);
  const seen = new Map<number, World>();
  const at = (k: number) => ({ phase: (k - 1) % phases.length, cycle: Math.floor((k - 1) / phases.length) + 1 });
  return {
    meta: (k) => ({ index: k, label: `T${k} (${phases[at(k).phase]}, cycle ${at(k).cycle})`, phase: phases[at(k).phase]!, cycle: at(k).cycle }),
    advance(w, rng, k) {
      const { phase } = at(k);
      const favoured = PHASE_KINDS[phase % PHASE_KINDS.length]!;
      const events = forwardEvents(w, rng, sc, (kind) => (favoured.includes(kind) ? 3 : 0.5));
      const before = seen.get(phase);
      if (!before) seen.set(phase, cloneWorld(w));
      else pullToward(w, before, 0.8);
      return events;
    },
  };
}

function pullToward(w: World, target: World, k: number): void {
  const mix = (a: number, b: number) => a + (b - a) * k;
  w.entities.forEach((e, i) => {
    const t = target.entities[i]!;
    e.mood = mix(e.mood, t.mood);
    e.stance = mix(e.stance, t.stance);
    e.resources = mix(e.resources, t.resources);
  });
  for (let i = 0; i < w.trust.length; i++) {
    for (let j = 0; j < w.trust.length; j++) {
      w.trust[i]![j] = mix(w.trust[i]![j]!, target.trust[i]![j]!);
      w.tension[i]![j] = mix(w.tension[i]![j]!, target.tension[i]![j]!);
    }
  }
}

/** Timepoints where BRANCHING opens alternatives: at most four, spread over the run. */
export function decisionPoints(n: number): number[] {
  const d = Math.min(n, 4);
  return [...new Set(Array.from({ length: d }, (_, j) => Math.ceil(((j + 1) * n) / d)))];
}

/** How far an alternative branch runs past its decision point (bounded to cap the run's size). */
export const BRANCH_DEPTH = 3;
