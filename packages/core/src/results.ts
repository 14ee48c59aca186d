import type { Db, SimulationJob } from "@simbatch/db";
import { invalidState, notFound } from "@simbatch/errors";
import { jobView } from "./views.ts";

/** GET /simulations/{id}/result: only for COMPLETED jobs. */
export async function getResult(db: Db, job: SimulationJob) {
  if (job.status !== "COMPLETED") throw invalidState(`Simulation ${job.id} is ${job.status}; results exist only for COMPLETED simulations`);
  const row = await db.simulationResult.findUnique({ where: { jobId: job.id } });
  if (!row) throw notFound(`Result of simulation ${job.id}`);
  const formats = await db.simulationExport.findMany({ where: { jobId: job.id }, select: { format: true } });
  const r = row.result as Record<string, unknown>;
  return {
    job: jobView(job),
    entities: r.entities ?? [],
    timepoints: r.timepoints ?? [],
    relationships: r.relationships ?? [],
    summary: r.summary ?? null,
    narrative_exports: Object.fromEntries(formats.map((f) => [f.format, `/simulations/${job.id}/exports/${f.format}`])),
    convergence_score: r.convergence_score ?? null,
    robustness_grade: r.robustness_grade ?? null,
    ...Object.fromEntries(Object.entries(r).filter(([k]) => !["entities", "timepoints", "relationships", "summary", "convergence_score", "robustness_grade"].includes(k))),
  };
}

export async function getExport(db: Db, job: SimulationJob, format: string) {
  const row = await db.simulationExport.findUnique({ where: { jobId_format: { jobId: job.id, format } } });
  if (!row) throw notFound(`Export '${format}' of simulation ${job.id}`);
  return { contentType: row.contentType, content: Buffer.from(row.content) };
}
