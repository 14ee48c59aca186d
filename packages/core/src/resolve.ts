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
    // One 422 names every wrong field: the template and the config are checked too when
    // the schema let them through, whatever else failed.
    const issues = parsed.error.issues.map((i) => ({ path: prefixed(pathPrefix, i.path), message: i.message }));
    const fields = (raw !== null && typeof raw === "object" ? raw : {}) as { template_id?: unknown; config?: unknown };
    const failed = new Set(parsed.error.issues.map((i) => String(i.path[0])));
    const key = !failed.has("template_id") && typeof fields.template_id === "string" ? fields.template_id.trim() || null : null;
    const config = !failed.has("config") && fields.config != null ? (fields.config as Record<string, unknown>) : {};
    issues.push(...catalogIssues(catalog, key, config, pathPrefix).issues);
    return { ok: false, issues };
  }
  const req: SimulationRequest = parsed.data;
  const config = req.config ?? {};
  const { template, issues } = catalogIssues(catalog, req.template_id?.trim() || null, config, pathPrefix);
  if (issues.length > 0) return { ok: false, issues };
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

/** The template a request names (an unknown one is an issue) and its config's issues against it. */
function catalogIssues(catalog: Catalog, templateKey: string | null, config: Record<string, unknown>, pathPrefix: string) {
  const template = templateKey ? catalog.resolve(templateKey) : undefined;
  if (templateKey && !template) {
    return { template, issues: [{ path: prefixed(pathPrefix, "template_id"), message: `unknown template '${templateKey}'` }] };
  }
  const issues = validateRunConfig(template?.template_id ?? null, config).map((i) => ({
    path: prefixed(pathPrefix, `config${i.path ? `.${i.path}` : ""}`),
    message: i.message,
  }));
  return { template, issues };
}
