import type { Db } from "@simbatch/db";

export interface ClaimedJob {
  id: string;
  ownerId: string;
  batchId: string | null;
  attempt: number;
  budgetCapMicros: number | null;
  templateId: string | null;
  description: string | null;
  entityCount: number;
  timepointCount: number;
  temporalMode: string;
  config: Record<string, unknown>;
  generateSummaries: boolean;
  exportFormats: string[];
  requestId: string | null;
}

interface ClaimRow {
  id: string;
  owner_id: string;
  batch_id: string | null;
  attempts: number;
  cap: bigint | null;
  template_id: string | null;
  description: string | null;
  entity_count: number;
  timepoint_count: number;
  temporal_mode: string;
  config: Record<string, unknown>;
  generate_summaries: boolean;
  export_formats: string[];
  request_id: string | null;
}

export type ClaimResult =
  | { kind: "claimed"; job: ClaimedJob }
  /** Cancel was requested while a crashed attempt held it: end it as cancelled. */
  | { kind: "cancel-requested"; jobId: string; attempt: number; requestId: string | null }
  | { kind: "not-runnable"; status: string | null };

/**
 * Takes a released job for a run: PENDING (released) → RUNNING, or a RUNNING job
 * whose previous attempt's worker died (BullMQ redelivered it). Each claim is a
 * new attempt, and resets the attempt's spending.
 */
export async function claimJob(db: Db, jobId: string): Promise<ClaimResult> {
  const rows = await db.$queryRaw<ClaimRow[]>`
    UPDATE simulation_jobs j SET status = 'RUNNING', attempts = j.attempts + 1, started_at = COALESCE(j.started_at, now()),
      cost_micros = 0, tokens_used = 0, progress_percent = 0, current_step = 'starting'
    WHERE j.id = ${jobId} AND NOT j.cancel_requested
      AND ((j.status = 'PENDING' AND j.released_at IS NOT NULL) OR j.status = 'RUNNING')
    RETURNING j.id, j.owner_id, j.batch_id, j.attempts, j.template_id, j.description, j.entity_count, j.timepoint_count,
      j.temporal_mode::text, j.config, j.generate_summaries, j.export_formats, j.request_id,
      (SELECT b.budget_cap_micros FROM batches b WHERE b.id = j.batch_id) AS cap`;
  const r = rows[0];
  if (r) {
    return {
      kind: "claimed",
      job: {
        id: r.id, ownerId: r.owner_id, batchId: r.batch_id, attempt: r.attempts,
        budgetCapMicros: r.cap === null ? null : Number(r.cap),
        templateId: r.template_id, description: r.description, entityCount: r.entity_count, timepointCount: r.timepoint_count,
        temporalMode: r.temporal_mode, config: r.config, generateSummaries: r.generate_summaries, exportFormats: r.export_formats,
        requestId: r.request_id,
      },
    };
  }
  const current = await db.$queryRaw<{ status: string; attempts: number; cancel_requested: boolean; request_id: string | null }[]>`
    SELECT status::text, attempts, cancel_requested, request_id FROM simulation_jobs WHERE id = ${jobId}`;
  const c = current[0];
  if (c?.status === "RUNNING" && c.cancel_requested) return { kind: "cancel-requested", jobId, attempt: c.attempts, requestId: c.request_id };
  return { kind: "not-runnable", status: c?.status ?? null };
}

/** Stores what a completed run produced, before its completion event is published. */
export async function storeResult(
  db: Db,
  jobId: string,
  attempt: number,
  result: unknown,
  exports: { format: string; contentType: string; content: Buffer }[],
): Promise<void> {
  await db.$transaction([
    db.simulationResult.upsert({
      where: { jobId },
      create: { jobId, attempt, result: result as object },
      update: { attempt, result: result as object },
    }),
    db.simulationExport.deleteMany({ where: { jobId } }),
    db.simulationExport.createMany({
      data: exports.map((e) => ({ jobId, format: e.format, contentType: e.contentType, content: new Uint8Array(e.content) })),
    }),
  ]);
}
