import { ScriptedEngine } from "../src/index.ts";
import type { RunContext, SimulationSpec, StepReport } from "../src/index.ts";

const spec = (config: Record<string, unknown>): SimulationSpec => ({
  jobId: "sim_000000000001",
  templateId: "test/scripted",
  description: null,
  entityCount: 1,
  timepointCount: 1,
  temporalMode: "FORWARD",
  config,
  generateSummaries: true,
  exportFormats: ["json"],
});

function ctx(stopAfter = Infinity) {
  const reports: StepReport[] = [];
  const c: RunContext = {
    stepDelayMs: 0,
    onStep: async (r) => void reports.push(r),
    shouldStop: async () => reports.length >= stopAfter,
  };
  return { c, reports };
}

describe("ScriptedEngine", () => {
  it("charges every step and completes", async () => {
    const { c, reports } = ctx();
    const out = await new ScriptedEngine().run(spec({ steps: 3, cost_usd_per_step: 0.02, tokens_per_step: 7 }), c);
    expect(out).toMatchObject({ kind: "completed", steps: 3, costMicros: 60_000, tokens: 21 });
    expect(reports.map((r) => r.step)).toEqual([1, 2, 3]);
  });

  it("fails at fail_at_step before charging it", async () => {
    const { c } = ctx();
    const out = await new ScriptedEngine().run(spec({ steps: 5, fail_at_step: 3 }), c);
    expect(out).toMatchObject({ kind: "failed", steps: 2, costMicros: 20_000, tokens: 200 });
  });

  it("stops after the step in flight when asked", async () => {
    const { c } = ctx(2);
    const out = await new ScriptedEngine().run(spec({ steps: 5 }), c);
    expect(out).toMatchObject({ kind: "interrupted", steps: 2, costMicros: 20_000 });
  });
});

describe("ScriptedEngine timing", () => {
  it("ignores SIM_STEP_MS pacing: its timing is exactly step_ms", async () => {
    jest.useFakeTimers();
    try {
      // With fake timers any pause would never end: the run must finish on microtasks alone.
      const { c } = ctx();
      const out = await new ScriptedEngine().run(spec({ steps: 3 }), { ...c, stepDelayMs: 60_000 });
      expect(out.kind).toBe("completed");
    } finally {
      jest.useRealTimers();
    }
  }, 5_000);
});
