import { usdToMicros } from "@simbatch/contracts";
import type { TemplateInfo } from "./catalog.ts";
import { parseScriptedConfig, SCRIPTED_TEMPLATE_ID } from "./run-config.ts";

/** Base rate for description-only jobs, per entity per timepoint: $0.0025. */
export const DESCRIPTION_RATE_MICROS = 2_500;

export { usdToMicros };

/**
 * A job's cost estimate before it runs, in micro-dollars.
 *
 * Template jobs: the catalog estimate scaled linearly by entities and by
 * timepoints relative to the template's defaults:
 *   estimate = catalog_cost × (entities / default_entities) × (timepoints / default_timepoints)
 * Description-only jobs: DESCRIPTION_RATE_MICROS × entities × timepoints.
 * Linear in both counts because the built-in engine's text is: each timepoint
 * writes `talk` dialog lines per entity plus a standing line per entity, and
 * BRANCHING alternatives run a bounded number of steps. Scenarios' `talk` is
 * calibrated so that at default counts the built-in engine's actual cost is
 * within 2x of this (test: builtin-engine.test.ts; README "Cost").
 * `test/scripted`: `estimate_usd` when given, else steps × cost_usd_per_step.
 */
export function estimateCostMicros(template: TemplateInfo | null, entityCount: number, timepointCount: number, config: unknown): number {
  if (template?.template_id === SCRIPTED_TEMPLATE_ID) {
    const cfg = parseScriptedConfig(config);
    return usdToMicros(cfg.estimate_usd ?? cfg.steps * cfg.cost_usd_per_step);
  }
  if (!template) return DESCRIPTION_RATE_MICROS * entityCount * timepointCount;
  const scale = (entityCount / template.default_entity_count) * (timepointCount / template.default_timepoint_count);
  return Math.max(1, Math.round(template.estimatedCostMicros * scale));
}
