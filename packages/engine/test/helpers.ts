import type { RunContext, SimulationSpec, StepReport, TemporalMode } from "../src/index.ts";
import { CATALOG } from "../src/index.ts";

export function specFor(templateId: string | null, over: Partial<SimulationSpec> = {}): SimulationSpec {
  const t = CATALOG.find((x) => x.template_id === templateId);
  return {
    jobId: "sim_00000000abcd",
    templateId,
    description: templateId ? null : "A town council decides whether to build a flood barrier.",
    entityCount: t?.default_entity_count ?? 4,
    timepointCount: t?.default_timepoint_count ?? 5,
    temporalMode: (t?.default_temporal_mode ?? "FORWARD") as TemporalMode,
    config: {},
    generateSummaries: true,
    exportFormats: ["json", "markdown"],
    ...over,
  };
}

/** A context that records reports and asks to stop once `stopAfter` steps have been reported. */
export function recordingCtx(stopAfter = Infinity) {
  const reports: StepReport[] = [];
  const ctx: RunContext = { stepDelayMs: 0, onStep: async (r) => void reports.push(r), shouldStop: async () => reports.length >= stopAfter };
  return { ctx, reports };
}
