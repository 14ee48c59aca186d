import { setTimeout as sleep } from "node:timers/promises";
import { parseScriptedConfig } from "./run-config.ts";
import { usdToMicros } from "./estimate.ts";
import type { RunContext, RunOutcome, SimulationEngine, SimulationSpec } from "./types.ts";

/**
 * `test/scripted`: exact steps, timing, cost and failure from the job's config.
 * Step k: wait step_ms, charge one step, report k/steps. `fail_at_step` = k fails
 * on reaching step k, before charging it. A stop request lets the step in flight
 * finish (it is charged), then the run ends, so charges are whole steps.
 */
export class ScriptedEngine implements SimulationEngine {
  readonly name = "scripted";

  async run(spec: SimulationSpec, ctx: RunContext): Promise<RunOutcome> {
    const cfg = parseScriptedConfig(spec.config);
    const stepMicros = usdToMicros(cfg.cost_usd_per_step);
    let costMicros = 0;
    let tokens = 0;
    for (let step = 1; step <= cfg.steps; step++) {
      // Only step_ms: SIM_STEP_MS stands in for model latency, and this template's timing must be exact.
      if (cfg.step_ms > 0) await sleep(cfg.step_ms);
      if (cfg.fail_at_step === step) {
        return { kind: "failed", steps: step - 1, costMicros, tokens, errorMessage: `scripted failure at step ${step}` };
      }
      costMicros += stepMicros;
      tokens += cfg.tokens_per_step;
      await ctx.onStep({ step, totalSteps: cfg.steps, label: `step ${step}/${cfg.steps}`, costMicros, tokens });
      if (step < cfg.steps && (await ctx.shouldStop())) {
        return { kind: "interrupted", steps: step, costMicros, tokens };
      }
    }
    const result = {
      entities: [],
      timepoints: [],
      relationships: [],
      summary: spec.generateSummaries ? `Scripted run of ${cfg.steps} step(s).` : null,
      convergence_score: null,
      robustness_grade: null,
    };
    return { kind: "completed", steps: cfg.steps, costMicros, tokens, result };
  }
}
