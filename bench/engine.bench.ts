/**
 * CPU time per run of the built-in engine (stepDelayMs 0), against a baseline
 * measured in the same process: a bare tokenizer pass over the same text. Run
 * with `npx tsx bench/engine.bench.ts`; exits 1 when board_meeting exceeds its
 * 50 ms CPU budget. Not a jest test: timings belong out of the unit suite.
 */
import { BuiltinEngine, CATALOG, countTokens, ScriptedEngine } from "../packages/engine/src/index.ts";
import type { RunContext, SimulationResultPayload, SimulationSpec } from "../packages/engine/src/index.ts";

const BUDGET_MS = 50;
const RUNS = 20;
const TEMPLATES = [
  "showcase/board_meeting",
  "showcase/hound_shadow_directorial",
  "showcase/mars_mission_portal",
  "showcase/castaway_colony_branching",
  "persona/agent4_elk_migration",
];
const ctx: RunContext = { stepDelayMs: 0, onStep: async () => {}, shouldStop: async () => false };

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function spec(id: string, i: number): SimulationSpec {
  const t = CATALOG.find((x) => x.template_id === id)!;
  return {
    jobId: `sim_${String(i).padStart(12, "0")}`,
    templateId: id,
    description: null,
    entityCount: t.default_entity_count,
    timepointCount: t.default_timepoint_count,
    temporalMode: t.default_temporal_mode,
    config: { seed: i },
    generateSummaries: true,
    exportFormats: ["json", "markdown"],
  };
}

const texts = (r: SimulationResultPayload) =>
  [...(r.timepoints as { narrative: string }[]), ...((r["branches"] ?? []) as { timepoints: { narrative: string }[] }[]).flatMap((b) => b.timepoints)].map(
    (t) => t.narrative,
  );

async function measure(id: string, engine: BuiltinEngine) {
  const runs: number[] = [],
    base: number[] = [];
  let tokens = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.cpuUsage();
    const out = await engine.run(spec(id, i + 1000), ctx);
    runs.push(cpuMs(process.cpuUsage(t0)));
    if (out.kind !== "completed") throw new Error(`${id}: ${out.kind}`);
    tokens = out.tokens;
    // Fresh strings so the tokenizer's merge cache cannot make the baseline free.
    const text = texts(out.result).map((t) => `${t} ${i}`);
    const b0 = process.cpuUsage();
    for (const t of text) countTokens(t);
    base.push(cpuMs(process.cpuUsage(b0)));
  }
  return { id, median: median(runs), max: Math.max(...runs), baseline: median(base), tokens };
}

async function main() {
  const engine = new BuiltinEngine();
  const w0 = process.cpuUsage();
  await engine.run(spec("showcase/board_meeting", 1), ctx); // load the vocabulary once, outside the numbers
  const warm = cpuMs(process.cpuUsage(w0));
  const s0 = process.cpuUsage();
  await new ScriptedEngine().run({ ...spec("showcase/board_meeting", 1), templateId: "test/scripted", config: { steps: 3 } }, ctx);
  const scripted = cpuMs(process.cpuUsage(s0));

  const rows = [];
  for (const id of TEMPLATES) rows.push(await measure(id, engine));
  console.log(`first run (cold JIT): ${warm.toFixed(1)} ms CPU; scripted 3-step run: ${scripted.toFixed(2)} ms CPU`);
  console.log(`${"template".padEnd(38)} ${"median".padStart(8)} ${"max".padStart(8)} ${"tokenize".padStart(9)} ${"ratio".padStart(6)} ${"tokens".padStart(7)}`);
  for (const r of rows) {
    console.log(
      `${r.id.padEnd(38)} ${r.median.toFixed(2).padStart(8)} ${r.max.toFixed(2).padStart(8)} ${r.baseline.toFixed(2).padStart(9)} ${(r.median / Math.max(r.baseline, 0.01)).toFixed(1).padStart(6)} ${String(r.tokens).padStart(7)}`,
    );
  }
  const board = rows.find((r) => r.id === "showcase/board_meeting")!;
  if (board.median > BUDGET_MS) {
    console.error(`FAIL: board_meeting median ${board.median.toFixed(2)} ms CPU exceeds ${BUDGET_MS} ms`);
    process.exit(1);
  }
  console.log(`OK: board_meeting median ${board.median.toFixed(2)} ms CPU (budget ${BUDGET_MS} ms)`);
}

void main();
