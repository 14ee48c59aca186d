import type { Db, SimulationJob } from "@simbatch/db";
import { invalidState, notFound } from "@simbatch/errors";
import { jobView } from "./views.ts";

const SHAPED_KEYS = ["entities", "timepoints", "relationships", "summary", "convergence_score", "robustness_grade"];

/**
 * What a completed job's stored result looks like on the wire, without the `job`
 * field: GET /simulations/{id}/result is `{job, ...shapeResult(...)}` and each line
 * of GET /simulations/batch/{id}/results carries `shapeResult(...)` as `result`.
 * Pure: the stored result, the job id and its export formats in, the body out.
 */
export function shapeResult(jobId: string, result: unknown, formats: readonly string[]) {
  const r = (result ?? {}) as Record<string, unknown>;
  return {
    entities: r.entities ?? [],
    timepoints: r.timepoints ?? [],
    relationships: r.relationships ?? [],
    summary: r.summary ?? null,
    narrative_exports: Object.fromEntries(formats.map((f) => [f, `/simulations/${jobId}/exports/${f}`])),
    convergence_score: r.convergence_score ?? null,
    robustness_grade: r.robustness_grade ?? null,
    ...Object.fromEntries(Object.entries(r).filter(([k]) => !SHAPED_KEYS.includes(k))),
  };
}

/** GET /simulations/{id}/result: only for COMPLETED jobs. */
export async function getResult(db: Db, job: SimulationJob) {
  if (job.status !== "COMPLETED") throw invalidState(`Simulation ${job.id} is ${job.status}; results exist only for COMPLETED simulations`);
  const row = await db.simulationResult.findUnique({ where: { jobId: job.id } });
  if (!row) throw notFound(`Result of simulation ${job.id}`);
  const formats = await db.simulationExport.findMany({ where: { jobId: job.id }, select: { format: true } });
  return {
    job: jobView(job),
    ...shapeResult(
      job.id,
      row.result,
      formats.map((f) => f.format),
    ),
  };
}

export async function getExport(db: Db, job: SimulationJob, format: string) {
  const row = await db.simulationExport.findUnique({ where: { jobId_format: { jobId: job.id, format } } });
  if (!row) throw notFound(`Export '${format}' of simulation ${job.id}`);
  return { contentType: row.contentType, content: Buffer.from(row.content) };
}
