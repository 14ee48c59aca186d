import { Prisma, type DbOrTx } from "@simbatch/db";

/** Per-batch counters (kept on the batch row by the jobs trigger; running counted live). */
export interface BatchAggregate {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  chargedMicros: bigint;
  tokens: bigint;
  jobIds: string[];
}

interface AggRow {
  id: string;
  total_jobs: number;
  running: number;
  completed_jobs: number;
  failed_jobs: number;
  cancelled_jobs: number;
  charged_micros: bigint;
  charged_tokens: bigint;
  job_ids: string[];
}

/**
 * Counters, charges and job ids (request order) of the given batches, in one
 * statement (one snapshot, so the counters always sum to total_jobs): the
 * counters the trigger keeps on the batch row, and the batch's running jobs
 * counted on their partial index (at most parallel_jobs rows).
 */
export async function aggregateBatches(db: DbOrTx, batchIds: string[]): Promise<Map<string, BatchAggregate>> {
  if (batchIds.length === 0) return new Map();
  const rows = await db.$queryRaw<AggRow[]>`
    SELECT b.id, b.total_jobs, b.completed_jobs, b.failed_jobs, b.cancelled_jobs, b.charged_micros, b.charged_tokens, b.job_ids,
      CASE WHEN b.active_jobs = 0 THEN 0
        ELSE (SELECT count(*) FROM simulation_jobs j WHERE j.batch_id = b.id AND j.status = 'RUNNING')::int END AS running
    FROM batches b WHERE b.id IN (${Prisma.join(batchIds)})`;
  return new Map(rows.map((r) => [r.id, aggregateOf(r)]));
}

function aggregateOf(r: AggRow): BatchAggregate {
  const ended = r.completed_jobs + r.failed_jobs + r.cancelled_jobs;
  return {
    pending: r.total_jobs - ended - r.running,
    running: r.running,
    completed: r.completed_jobs,
    failed: r.failed_jobs,
    cancelled: r.cancelled_jobs,
    chargedMicros: BigInt(r.charged_micros),
    tokens: BigInt(r.charged_tokens),
    jobIds: r.job_ids,
  };
}

export const EMPTY_AGGREGATE: BatchAggregate = {
  pending: 0,
  running: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
  chargedMicros: 0n,
  tokens: 0n,
  jobIds: [],
};

/** The aggregate of a batch just admitted: every job pending. */
export const admittedAggregate = (jobIds: string[]): BatchAggregate => ({ ...EMPTY_AGGREGATE, pending: jobIds.length, jobIds });
