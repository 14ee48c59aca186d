import { periodOf, type JobEvent } from "@simbatch/contracts";
import { inPreparedTransaction, Prisma, type Raw } from "@simbatch/db";
import type { JobOutcome } from "@simbatch/queue";
import type { CoreDeps } from "./deps.ts";
import { evaluateBatches } from "./batch-state.ts";
import { SideEffects } from "./side-effects.ts";
import { attemptCharge, chargeEnded, reportedSpending } from "./sql.ts";

const TERMINAL = { completed: "COMPLETED", failed: "FAILED", cancelled: "CANCELLED" } as const;
export type TerminalEvent = Extract<JobEvent, { type: keyof typeof TERMINAL }>;

export type ProgressEvent = Extract<JobEvent, { type: "progress" }>;

/** A completion whose worker already ended and charged it in Postgres (see the event's `ended`). */
const endedByWorker = (e: TerminalEvent): e is Extract<TerminalEvent, { type: "completed" }> => e.type === "completed" && e.ended === true;

/**
 * Splits a read into the last progress event per job and attempt (earlier ones
 * are superseded), the first terminal event per job and attempt (a replay is a
 * duplicate), and the started jobs.
 */
export function partitionEvents(events: JobEvent[]): { progress: ProgressEvent[]; terminal: TerminalEvent[]; started: string[] } {
  const progress = new Map<string, ProgressEvent>();
  const terminal = new Map<string, TerminalEvent>();
  const started = new Set<string>();
  for (const e of events) {
    const key = `${e.jobId}:${e.attempt}`;
    if (e.type === "progress") progress.set(key, e);
    else if (e.type === "started") started.add(e.jobId);
    else if (!terminal.has(key)) terminal.set(key, e);
  }
  return { progress: [...progress.values()], terminal: [...terminal.values()], started: [...started] };
}

/**
 * One guarded UPDATE for every progress event of the read. Spending only grows
 * within an attempt, so an out-of-order event never moves it back. Returns the
 * batches whose budget needs a look (capped ones: spending so far counts).
 */
async function applyProgress(tx: Raw, events: ProgressEvent[], effects: SideEffects): Promise<string[]> {
  if (events.length === 0) return [];
  const values = events.map(
    (e) =>
      Prisma.sql`(${e.jobId}::text, ${e.attempt}::int, ${e.progress}::float8, ${e.step}::text, ${BigInt(e.costMicros)}::bigint, ${BigInt(e.tokens)}::bigint)`,
  );
  const rows = await tx.$queryRaw<{ id: string; batch_id: string | null; capped: boolean | null }[]>`
    UPDATE simulation_jobs j SET progress_percent = GREATEST(j.progress_percent, v.progress), current_step = v.step,
      ${reportedSpending("v")}
    FROM (VALUES ${Prisma.join(values)}) AS v(id, attempt, progress, step, cost, tokens)
    WHERE j.id = v.id AND j.status = 'RUNNING' AND j.attempts = v.attempt
    RETURNING j.id, j.batch_id, (SELECT b.budget_cap_micros IS NOT NULL FROM batches b WHERE b.id = j.batch_id) AS capped`;
  for (const r of rows) effects.jobChanged(r.id, r.batch_id);
  return rows.flatMap((r) => (r.batch_id && r.capped ? [r.batch_id] : []));
}

/** The cancel reason a budget interruption leaves on its job (evaluateBatches reads it for the stop reason). */
export const BUDGET_CANCEL_REASON = "budget_exhausted: the batch reached its budget cap";

/**
 * What a terminal event writes: the job's end status, its time and the ledger
 * period it is charged to (the event's time, not the reconciler's), the failure
 * message, and the cancel reason a cancelled attempt leaves (the budget's, when
 * the worker stopped on the batch's budget).
 */
export function terminalValues(e: TerminalEvent) {
  const at = new Date(e.at);
  return {
    jobId: e.jobId,
    attempt: e.attempt,
    status: TERMINAL[e.type],
    at,
    costMicros: BigInt(e.costMicros),
    tokens: BigInt(e.tokens),
    error: e.type === "failed" ? e.errorMessage : null,
    period: periodOf(at),
    cancelReason: e.type === "cancelled" && e.stoppedBy === "budget" ? BUDGET_CANCEL_REASON : "interrupted",
  };
}

/**
 * Ends the attempts (guarded on RUNNING and the same attempt, so a replayed or
 * stale event changes nothing) and charges the ledger once per (job, attempt),
 * each in one statement for the whole read. The job's cost is what its
 * superseded attempts were charged (carried) plus this attempt's spending; the
 * charge row is this attempt's part. An event never lowers what progress
 * already reported for the attempt (an attempt ended on behalf of a crashed
 * worker reports 0). A completion its worker already ended (`ended: true`)
 * writes nothing here; its batch is re-derived like any other.
 */
async function applyTerminal(
  tx: Raw,
  all: TerminalEvent[],
  effects: SideEffects,
): Promise<{ applied: number; endedByWorkers: number; batches: string[]; outcomes: JobOutcome[] }> {
  // Completions their workers already ended and charged (with their results): nothing to write, their batches to re-derive.
  const byWorkers = all.filter(endedByWorker);
  const batches: string[] = [];
  for (const e of byWorkers) {
    effects.jobChanged(e.jobId, e.batchId ?? null);
    if (e.batchId) batches.push(e.batchId);
  }
  const events = all.filter((e) => !endedByWorker(e));
  if (events.length === 0) return { applied: 0, endedByWorkers: byWorkers.length, batches, outcomes: [] };
  const values = events.map((e) => {
    const v = terminalValues(e);
    return Prisma.sql`(${v.jobId}::text, ${v.attempt}::int, ${v.status}::text, ${v.at}::timestamp, ${v.costMicros}::bigint, ${v.tokens}::bigint,
    ${v.error}::text, ${v.period}::text, ${v.cancelReason}::text)`;
  });
  // The ends and their charges in one statement: a charge row per ended attempt
  // (unique on job and attempt, so a replay inserts nothing).
  const ended = await tx.$queryRaw<{ id: string; batch_id: string | null; template_id: string | null; status: JobOutcome["status"]; duration_s: number }[]>`
    WITH ended AS (
      UPDATE simulation_jobs j SET status = v.status::"JobStatus", completed_at = v.at,
        ${reportedSpending("v")},
        progress_percent = CASE WHEN v.status = 'COMPLETED' THEN 100 ELSE j.progress_percent END,
        current_step = CASE WHEN v.status = 'COMPLETED' THEN 'completed' ELSE j.current_step END,
        error_message = COALESCE(v.error, j.error_message),
        cancel_reason = CASE WHEN v.status = 'CANCELLED' THEN COALESCE(j.cancel_reason, v.stop) ELSE j.cancel_reason END
      FROM (VALUES ${Prisma.join(values)}) AS v(id, attempt, status, at, cost, tokens, error, period, stop)
      WHERE j.id = v.id AND j.status = 'RUNNING' AND j.attempts = v.attempt
      RETURNING j.id, j.owner_id, j.batch_id, v.attempt, ${attemptCharge}, v.period,
        j.template_id, v.status, EXTRACT(EPOCH FROM (v.at - j.started_at))::float8 AS duration_s
    ), charged AS (
      ${chargeEnded}
    )
    SELECT id, batch_id, template_id, status, duration_s FROM ended`;
  for (const r of ended) effects.jobChanged(r.id, r.batch_id);
  return {
    applied: ended.length,
    endedByWorkers: byWorkers.length,
    batches: [...batches, ...ended.flatMap((r) => (r.batch_id ? [r.batch_id] : []))],
    // Only the rows this statement ended: a replayed event ends nothing, so it is never counted twice.
    outcomes: ended.map((r) => ({ template: r.template_id, status: r.status, durationSeconds: Number(r.duration_s ?? 0) })),
  };
}

/** Still-PENDING batches of started jobs: a start matters to a batch only as its first one (→ RUNNING). */
async function pendingBatchesOf(tx: Raw, jobIds: string[]): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const rows = await tx.$queryRaw<{ batch_id: string }[]>`
    SELECT DISTINCT j.batch_id FROM simulation_jobs j JOIN batches b ON b.id = j.batch_id
    WHERE j.id IN (${Prisma.join(jobIds)}) AND b.status = 'PENDING'`;
  return rows.map((r) => r.batch_id);
}

export interface ApplyResult {
  applied: number;
  /** A job ended or started: capacity changed, so dispatch should run. */
  capacityChanged: boolean;
}

/**
 * Applies a batch of worker events in one transaction: job rows, ledger, then
 * the affected batches' state. Replaying any of them is harmless.
 */
export async function applyEvents(deps: CoreDeps, events: JobEvent[]): Promise<ApplyResult> {
  if (events.length === 0) return { applied: 0, capacityChanged: false };
  const { progress, terminal, started } = partitionEvents(events);
  const effects = new SideEffects();
  const { outcomes, ...result } = await inPreparedTransaction(deps.db, async (tx) => {
    const batches = new Set<string>(await applyProgress(tx, progress, effects));
    const ended = await applyTerminal(tx, terminal, effects);
    for (const id of [...ended.batches, ...(await pendingBatchesOf(tx, started))]) batches.add(id);
    await evaluateBatches(deps, tx, batches, effects);
    return { applied: ended.applied, capacityChanged: ended.applied > 0 || ended.endedByWorkers > 0 || started.length > 0, outcomes: ended.outcomes };
  });
  await effects.run(deps);
  // Metrics after commit: a crash or a Redis error here loses these counts (an undercount), never the jobs' state.
  await deps.jobMetrics.record(outcomes).catch((err: unknown) => deps.logger.warn("job metrics not recorded", { error: String(err) }));
  return result;
}
