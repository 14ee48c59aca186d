import { type Batch, type DbOrTx, type SimulationJob } from "@simbatch/db";
import { forbidden, notFound } from "@simbatch/errors";
import { JOB_ID_RE, BATCH_ID_RE, usd } from "@simbatch/contracts";
import { admittedAggregate, aggregateBatches, EMPTY_AGGREGATE, type BatchAggregate } from "./batch-queries.ts";

export type { BatchAggregate };

/** A batch row with its counters and charges: what the API renders as a batch. */
export interface BatchWithAggregate {
  batch: Batch;
  aggregate: BatchAggregate;
}

/** 404 when absent (or malformed), 403 when another user's. */
export async function loadOwnedJob(db: DbOrTx, userId: string, jobId: string): Promise<SimulationJob> {
  const job = JOB_ID_RE.test(jobId) ? await db.simulationJob.findUnique({ where: { id: jobId } }) : null;
  if (!job) throw notFound(`Simulation ${jobId}`);
  if (job.ownerId !== userId) throw forbidden(`Simulation ${jobId}`);
  return job;
}

export async function loadOwnedBatch(db: DbOrTx, userId: string, batchId: string): Promise<Batch> {
  const batch = BATCH_ID_RE.test(batchId) ? await db.batch.findUnique({ where: { id: batchId } }) : null;
  if (!batch) throw notFound(`Batch ${batchId}`);
  if (batch.ownerId !== userId) throw forbidden(`Batch ${batchId}`);
  return batch;
}

export interface Page {
  page: number;
  pageSize: number;
}

/**
 * The number of a user's jobs (in one status), from the user's counters; only
 * RUNNING ones (at most the tier's concurrency) are counted on their index.
 */
async function countJobs(db: DbOrTx, userId: string, status: string | undefined): Promise<number> {
  const [r] = await db.$queryRaw<{ total: bigint; unfinished: bigint; completed: bigint; failed: bigint; cancelled: bigint; running: bigint }[]>`
    SELECT COALESCE(c.jobs_total, 0) AS total, COALESCE(c.jobs_unfinished, 0) AS unfinished, COALESCE(c.jobs_completed, 0) AS completed,
      COALESCE(c.jobs_failed, 0) AS failed, COALESCE(c.jobs_cancelled, 0) AS cancelled,
      (SELECT count(*) FROM simulation_jobs j WHERE j.owner_id = ${userId} AND j.status = 'RUNNING') AS running
    FROM (SELECT 1) one LEFT JOIN user_totals c ON c.user_id = ${userId}`;
  const n = (v: bigint | undefined) => Number(v ?? 0);
  switch (status) {
    case undefined:
      return n(r?.total);
    case "PENDING":
      return n(r?.unfinished) - n(r?.running);
    case "RUNNING":
      return n(r?.running);
    case "COMPLETED":
      return n(r?.completed);
    case "FAILED":
      return n(r?.failed);
    case "CANCELLED":
      return n(r?.cancelled);
    default:
      return 0;
  }
}

export async function listJobs(db: DbOrTx, userId: string, status: string | undefined, p: Page) {
  const where = { ownerId: userId, ...(status ? { status: status as SimulationJob["status"] } : {}) };
  const [rows, total] = await Promise.all([
    db.simulationJob.findMany({ where, orderBy: [{ createdAt: "desc" }, { id: "desc" }], skip: (p.page - 1) * p.pageSize, take: p.pageSize }),
    countJobs(db, userId, status),
  ]);
  return { jobs: rows, total, page: p.page, pageSize: p.pageSize };
}

/** The batches with their aggregates, read in one statement. */
export async function withAggregates(db: DbOrTx, batches: Batch[]): Promise<BatchWithAggregate[]> {
  const aggs = await aggregateBatches(
    db,
    batches.map((b) => b.id),
  );
  return batches.map((b) => ({ batch: b, aggregate: aggs.get(b.id) ?? EMPTY_AGGREGATE }));
}

/** A batch admitted just now, from what admission wrote (no read back). */
export function admittedBatch(batch: Batch): BatchWithAggregate {
  return { batch, aggregate: admittedAggregate(batch.jobIds) };
}

export async function loadBatchAggregate(db: DbOrTx, batch: Batch): Promise<BatchWithAggregate> {
  return (await withAggregates(db, [batch]))[0]!;
}

/** The batch's jobs in request order. */
export async function batchJobs(db: DbOrTx, batchId: string): Promise<SimulationJob[]> {
  return db.simulationJob.findMany({ where: { batchId }, orderBy: { batchIndex: "asc" } });
}

export async function listBatches(db: DbOrTx, userId: string, status: string | undefined, p: Page) {
  const where = { ownerId: userId, ...(status ? { status: status as Batch["status"] } : {}) };
  const [rows, total] = await Promise.all([
    db.batch.findMany({ where, orderBy: [{ createdAt: "desc" }, { id: "desc" }], skip: (p.page - 1) * p.pageSize, take: p.pageSize }),
    db.batch.count({ where }),
  ]);
  return { batches: await withAggregates(db, rows), total, page: p.page, pageSize: p.pageSize };
}

const num = (v: unknown): number => Number(v ?? 0);
const usdOf = (v: unknown): number => usd(BigInt((v as bigint | number | null) ?? 0));
const avgSeconds = (v: unknown): number | null => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000);

/**
 * GET /simulations/stats from the user's counters (one row, kept by the jobs
 * trigger) and the running jobs counted on the (owner, status) index.
 */
export async function jobStats(db: DbOrTx, userId: string) {
  const [r] = await db.$queryRaw<Record<string, unknown>[]>`
    SELECT c.jobs_total AS total, c.jobs_unfinished AS unfinished, c.jobs_completed AS completed, c.jobs_failed AS failed,
      c.jobs_cancelled AS cancelled, c.charged_micros AS cost, c.charged_tokens AS tokens,
      CASE WHEN c.duration_count > 0 THEN c.duration_seconds_sum / c.duration_count END AS avg_s,
      (SELECT count(*) FROM simulation_jobs j WHERE j.owner_id = ${userId} AND j.status = 'RUNNING') AS running
    FROM user_totals c WHERE c.user_id = ${userId}`;
  const running = num(r?.running);
  return {
    total_jobs: num(r?.total),
    pending_jobs: num(r?.unfinished) - running,
    running_jobs: running,
    completed_jobs: num(r?.completed),
    failed_jobs: num(r?.failed),
    cancelled_jobs: num(r?.cancelled),
    total_cost_usd: usdOf(r?.cost),
    total_tokens: num(r?.tokens),
    avg_duration_seconds: avgSeconds(r?.avg_s),
  };
}

/** GET /simulations/batch/stats: batch counts over the user's batches (owner index), costs from the user's counters. */
export async function batchStats(db: DbOrTx, userId: string) {
  const [b] = await db.$queryRaw<Record<string, unknown>[]>`
    SELECT count(*) AS total,
      count(*) FILTER (WHERE status = 'PENDING') AS pending, count(*) FILTER (WHERE status = 'RUNNING') AS running,
      count(*) FILTER (WHERE status = 'COMPLETED') AS completed, count(*) FILTER (WHERE status = 'PARTIAL') AS partial,
      count(*) FILTER (WHERE status = 'FAILED') AS failed, count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
      COALESCE(sum(total_jobs), 0) AS jobs,
      avg(extract(epoch FROM completed_at - started_at)) FILTER (WHERE completed_at IS NOT NULL AND started_at IS NOT NULL) AS avg_s
    FROM batches WHERE owner_id = ${userId}`;
  const [c] = await db.$queryRaw<Record<string, unknown>[]>`
    SELECT batch_charged_micros AS cost, batch_charged_tokens AS tokens FROM user_counters WHERE user_id = ${userId}`;
  const total = num(b?.total);
  return {
    total_batches: total,
    pending_batches: num(b?.pending),
    running_batches: num(b?.running),
    completed_batches: num(b?.completed),
    partial_batches: num(b?.partial),
    failed_batches: num(b?.failed),
    cancelled_batches: num(b?.cancelled),
    total_jobs: num(b?.jobs),
    total_cost_usd: usdOf(c?.cost),
    total_tokens: num(c?.tokens),
    avg_jobs_per_batch: total === 0 ? 0 : num(b?.jobs) / total,
    avg_duration_seconds: avgSeconds(b?.avg_s),
  };
}

/** A batch with its aggregate by id (live streams), or null when it is gone. */
export async function loadBatchById(db: DbOrTx, batchId: string): Promise<BatchWithAggregate | null> {
  const batch = await db.batch.findUnique({ where: { id: batchId } });
  return batch ? loadBatchAggregate(db, batch) : null;
}

/** What a batch stream shows of each job, in one read on the batch's index. */
export interface JobSummary {
  id: string;
  status: string;
  progressPercent: number;
  costMicros: bigint;
  errorMessage: string | null;
}

export async function batchJobSummaries(db: DbOrTx, batchId: string): Promise<JobSummary[]> {
  return db.simulationJob.findMany({
    where: { batchId },
    select: { id: true, status: true, progressPercent: true, costMicros: true, errorMessage: true },
    orderBy: { batchIndex: "asc" },
  });
}

export const JOB_FINAL_STATUSES: ReadonlySet<string> = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
