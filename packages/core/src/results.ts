import type { Db, SimulationJob } from "@simbatch/db";
import { EXPORT_FORMATS, renderExport, type ExportFormat, type SimulationResultPayload } from "@simbatch/engine";
import { invalidState, notFound } from "@simbatch/errors";

/**
 * Export formats the worker renders once and stores with the result. A PDF of a
 * result near the 1 MiB cap takes ~0.4 s of CPU to typeset, which would hold up
 * the API's event loop on every download. The other formats are rendered from
 * the stored result when downloaded (~10 ms at the cap): a pure function of it,
 * so each download gives the same bytes, and nothing stores a second copy of the
 * result per format.
 */
export const STORED_EXPORT_FORMATS: readonly ExportFormat[] = ["pdf"];

/** The formats a completed job offers: those it asked for, each once, in EXPORT_FORMATS' order (by name). */
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

/** GET /simulations/{id}/exports/{format}: a completed job's export in a format it asked for, stored or rendered from its result. */
export async function getExport(db: Db, job: SimulationJob, format: string) {
  const missing = () => notFound(`Export '${format}' of simulation ${job.id}`);
  const offered = exportFormatsOf(job.exportFormats).find((f) => f === format);
  if (job.status !== "COMPLETED" || !offered) throw missing();
  if (STORED_EXPORT_FORMATS.includes(offered)) {
    const row = await db.simulationExport.findUnique({ where: { jobId_format: { jobId: job.id, format: offered } } });
    if (!row) throw missing();
    return { contentType: row.contentType, content: Buffer.from(row.content) };
  }
  const row = await db.simulationResult.findUnique({ where: { jobId: job.id } });
  if (!row) throw missing();
  const file = await renderExport(row.result as SimulationResultPayload, offered);
  return { contentType: file.contentType, content: file.content };
}
