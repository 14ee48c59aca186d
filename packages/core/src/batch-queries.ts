import { Prisma, type DbOrTx } from "@simbatch/db";
import type { BatchAggregate } from "./views.ts";

interface AggRow {
  batch_id: string;
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  charged: bigint;
  tokens: bigint;
  job_ids: string[];
}

/** Counters, charges and job ids (request order) of the given batches, in one query. */
export async function aggregateBatches(db: DbOrTx, batchIds: string[]): Promise<Map<string, BatchAggregate>> {
  if (batchIds.length === 0) return new Map();
  const rows = await db.$queryRaw<AggRow[]>`
    SELECT batch_id,
      count(*) FILTER (WHERE status = 'PENDING')::int AS pending,
      count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
      count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
      count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
      count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
      COALESCE(sum(cost_micros) FILTER (WHERE status IN ('COMPLETED','FAILED','CANCELLED')), 0)::bigint AS charged,
      COALESCE(sum(tokens_used) FILTER (WHERE status IN ('COMPLETED','FAILED','CANCELLED')), 0)::bigint AS tokens,
      array_agg(id ORDER BY batch_index) AS job_ids
    FROM simulation_jobs WHERE batch_id IN (${Prisma.join(batchIds)})
    GROUP BY batch_id`;
  return new Map(
    rows.map((r) => [
      r.batch_id,
      {
        pending: r.pending,
        running: r.running,
        completed: r.completed,
        failed: r.failed,
        cancelled: r.cancelled,
        chargedMicros: BigInt(r.charged),
        tokens: BigInt(r.tokens),
        jobIds: r.job_ids,
      },
    ]),
  );
}

export const EMPTY_AGGREGATE: BatchAggregate = {
  pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0, chargedMicros: 0n, tokens: 0n, jobIds: [],
};
