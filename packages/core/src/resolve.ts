import { SimulationRequestSchema, type SimulationRequest } from "@simbatch/contracts";
import { estimateCostMicros, validateRunConfig, type Catalog, type ExportFormat, type SimulationSpec, type TemporalMode } from "@simbatch/engine";
import type { FieldIssue } from "@simbatch/errors";

/** A simulation request with every default applied: what the job row stores. */
export interface ResolvedSimulation extends Omit<SimulationSpec, "jobId"> {
  metadata: Record<string, unknown> | null;
  estimatedCostMicros: number;
}

const DEFAULT_EXPORTS: ExportFormat[] = ["json", "markdown"];

const prefixed = (prefix: string, path: PropertyKey[] | string) => {
  const tail = Array.isArray(path) ? path.map(String).join(".") : path;
  return [prefix, tail].filter(Boolean).join(".");
};

/** Validates one simulation request and applies template and global defaults. */
export function resolveSimulation(
  catalog: Catalog,
  raw: unknown,
  pathPrefix = "",
): { ok: true; value: ResolvedSimulation } | { ok: false; issues: FieldIssue[] } {
  const parsed = SimulationRequestSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, issues: parsed.error.issues.map((i) => ({ path: prefixed(pathPrefix, i.path), message: i.message })) };
  }
  const req: SimulationRequest = parsed.data;
  const templateKey = req.template_id?.trim() || null;
  const template = templateKey ? catalog.resolve(templateKey) : undefined;
  if (templateKey && !template) {
    return { ok: false, issues: [{ path: prefixed(pathPrefix, "template_id"), message: `unknown template '${templateKey}'` }] };
  }
  const config = req.config ?? {};
  const configIssues = validateRunConfig(template?.template_id ?? null, config);
  if (configIssues.length > 0) {
    return { ok: false, issues: configIssues.map((i) => ({ path: prefixed(pathPrefix, `config${i.path ? `.${i.path}` : ""}`), message: i.message })) };
  }
  const entityCount = req.entity_count ?? template?.default_entity_count ?? 4;
  const timepointCount = req.timepoint_count ?? template?.default_timepoint_count ?? 5;
  return {
    ok: true,
    value: {
      templateId: template?.template_id ?? null,
      description: req.description ?? null,
      entityCount,
      timepointCount,
      temporalMode: (req.temporal_mode ?? template?.default_temporal_mode ?? "FORWARD") as TemporalMode,
      config,
      generateSummaries: req.generate_summaries ?? true,
      exportFormats: req.export_formats ? ([...new Set(req.export_formats)] as ExportFormat[]) : DEFAULT_EXPORTS,
      metadata: req.metadata ?? null,
      estimatedCostMicros: estimateCostMicros(template ?? null, entityCount, timepointCount, config),
    },
  };
}
