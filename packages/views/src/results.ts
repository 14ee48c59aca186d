import { usd, type BatchResultRow } from "@simbatch/core";
import type { SimulationJob } from "@simbatch/db";
import { jobView } from "./jobs.ts";

const SHAPED_KEYS = ["entities", "timepoints", "relationships", "summary", "convergence_score", "robustness_grade"];

/** Where a job's export is downloaded (GET /simulations/{job_id}/exports/{format}). */
export const exportUrl = (jobId: string, format: string): string => `/simulations/${jobId}/exports/${format}`;

/**
 * What a completed job's stored result looks like on the wire, without the `job`
 * field: GET /simulations/{id}/result is `{job, ...resultView(...)}` and each line
 * of GET /simulations/batch/{id}/results carries `resultView(...)` as `result`.
 * Pure: the stored result, the job id and its export formats in, the body out.
 */
export function resultView(jobId: string, result: unknown, formats: readonly string[]) {
  const r = (result ?? {}) as Record<string, unknown>;
  return {
    entities: r.entities ?? [],
    timepoints: r.timepoints ?? [],
    relationships: r.relationships ?? [],
    summary: r.summary ?? null,
    narrative_exports: Object.fromEntries(formats.map((f) => [f, exportUrl(jobId, f)])),
    convergence_score: r.convergence_score ?? null,
    robustness_grade: r.robustness_grade ?? null,
    ...Object.fromEntries(Object.entries(r).filter(([k]) => !SHAPED_KEYS.includes(k))),
  };
}

/** GET /simulations/{id}/result. */
export function jobResultView(r: { job: SimulationJob; result: unknown; formats: readonly string[] }) {
  return { job: jobView(r.job), ...resultView(r.job.id, r.result, r.formats) };
}

/** One NDJSON line of GET /simulations/batch/{id}/results (contract: Batch results and the cross-run report). */
export function batchResultLine(r: BatchResultRow): string {
  const result = r.status === "COMPLETED" && r.result_text !== null ? resultView(r.id, JSON.parse(r.result_text), r.formats) : null;
  if (result && "job" in result) delete (result as Record<string, unknown>).job;
  return `${JSON.stringify({
    index: r.batch_index,
    job_id: r.id,
    status: r.status,
    template_id: r.template_id,
    temporal_mode: r.temporal_mode,
    cost_usd: usd(r.cost_micros),
    tokens_used: Number(r.tokens_used),
    result,
    error: r.status === "FAILED" ? { message: r.error_message ?? "failed" } : null,
  })}\n`;
}
