import { setTimeout as sleep } from "node:timers/promises";
import type { RunContext, RunOutcome, SimulationEngine, SimulationSpec } from "./types.ts";

/** Price used until the tokenizer and price table land: $2.50 per million tokens. */
const MICROS_PER_TOKEN = 2.5;

/** First built-in engine: one step per timepoint, a line per entity. */
export class BuiltinEngine implements SimulationEngine {
  readonly name = "builtin";

  async run(spec: SimulationSpec, ctx: RunContext): Promise<RunOutcome> {
    const entities = Array.from({ length: spec.entityCount }, (_, i) => ({ entity_id: `e${i + 1}`, name: `Entity ${i + 1}` }));
    const timepoints: unknown[] = [];
    let tokens = 0;
    let costMicros = 0;
    for (let step = 1; step <= spec.timepointCount; step++) {
      if (ctx.stepDelayMs > 0) await sleep(ctx.stepDelayMs);
      const lines = entities.map((e) => `${e.name} acts at timepoint ${step} of ${spec.templateId ?? spec.description}.`);
      timepoints.push({ index: step, events: lines });
      tokens += Math.ceil(lines.join(" ").length / 4);
      costMicros = Math.round(tokens * MICROS_PER_TOKEN);
      await ctx.onStep({ step, totalSteps: spec.timepointCount, label: `timepoint ${step}/${spec.timepointCount}`, costMicros, tokens });
      if (step < spec.timepointCount && (await ctx.shouldStop())) return { kind: "interrupted", steps: step, costMicros, tokens };
    }
    const result = { entities, timepoints, relationships: [], summary: spec.generateSummaries ? "Run complete." : null, convergence_score: null, robustness_grade: null };
    const exports = spec.exportFormats.map((format) => ({ format, contentType: "application/json", content: Buffer.from(JSON.stringify(result)) }));
    return { kind: "completed", steps: spec.timepointCount, costMicros, tokens, result, exports };
  }
}
