import type { Db, SimulationJob } from "@simbatch/db";
import { EXPORT_FORMATS, renderExport, type ExportFormat, type SimulationResultPayload } from "@simbatch/engine";
import { invalidState, notFound } from "@simbatch/errors";

/**
 * The formats a completed job offers: those it asked for, each once, in
 * EXPORT_FORMATS' order (by name). Exports are rendered from the stored result on download (a pure
 * function of it), so they are not stored and every completed job has them all.
 */
export function exportFormatsOf(formats: readonly string[]): ExportFormat[] {
  return EXPORT_FORMATS.filter((f) => formats.includes(f));
}

/** GET /simulations/{id}/result: only for COMPLETED jobs; the stored result and the formats of its exports. */
export async function getResult(db: Db, job: SimulationJob) {
  if (job.status !== "COMPLETED") throw invalidState(`Simulation ${job.id} is ${job.status}; results exist only for COMPLETED simulations`);
  const row = await db.simulationResult.findUnique({ where: { jobId: job.id } });
  if (!row) throw notFound(`Result of simulation ${job.id}`);
  return { job, result: row.result as unknown, formats: exportFormatsOf(job.exportFormats) };
}

/** GET /simulations/{id}/exports/{format}: a completed job's export in a format it asked for, rendered from its result. */
export async function getExport(db: Db, job: SimulationJob, format: string) {
  const offered = job.status === "COMPLETED" && (exportFormatsOf(job.exportFormats) as string[]).includes(format);
  const row = offered ? await db.simulationResult.findUnique({ where: { jobId: job.id } }) : null;
  if (!row) throw notFound(`Export '${format}' of simulation ${job.id}`);
  const file = await renderExport(row.result as SimulationResultPayload, format as ExportFormat);
  return { contentType: file.contentType, content: file.content };
}
