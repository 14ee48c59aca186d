import type { Db, SimulationJob } from "@simbatch/db";
import { invalidState, notFound } from "@simbatch/errors";

/** GET /simulations/{id}/result: only for COMPLETED jobs; the stored result and the formats of its exports (the API renders them). */
export async function getResult(db: Db, job: SimulationJob) {
  if (job.status !== "COMPLETED") throw invalidState(`Simulation ${job.id} is ${job.status}; results exist only for COMPLETED simulations`);
  const row = await db.simulationResult.findUnique({ where: { jobId: job.id } });
  if (!row) throw notFound(`Result of simulation ${job.id}`);
  const formats = await db.simulationExport.findMany({ where: { jobId: job.id }, select: { format: true } });
  return { job, result: row.result as unknown, formats: formats.map((f) => f.format) };
}

export async function getExport(db: Db, job: SimulationJob, format: string) {
  const row = await db.simulationExport.findUnique({ where: { jobId_format: { jobId: job.id, format } } });
  if (!row) throw notFound(`Export '${format}' of simulation ${job.id}`);
  return { contentType: row.contentType, content: Buffer.from(row.content) };
}
