import { periodOf } from "@simbatch/contracts";
import type { DbOrTx } from "@simbatch/db";

/**
 * Simulations used in a period: admitted jobs, less those cancelled before they
 * started (their reservation is given back), plus operator adjustments.
 */
export async function simulationsUsed(db: DbOrTx, userId: string, period: string): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`
    SELECT (
      (SELECT count(*) FROM simulation_jobs
        WHERE owner_id = ${userId} AND admitted_period = ${period}
          AND NOT (status = 'CANCELLED' AND started_at IS NULL))
      + (SELECT COALESCE(sum(simulations), 0) FROM ledger_entries WHERE user_id = ${userId} AND period = ${period})
    )::int AS n`;
  return row?.n ?? 0;
}

/** Charges (and adjustments) in the period of `at`, from the ledger. */
export async function costUsedMicros(db: DbOrTx, userId: string, at: Date): Promise<bigint> {
  const [row] = await db.$queryRaw<{ c: bigint }[]>`
    SELECT COALESCE(sum(cost_micros), 0)::bigint AS c FROM ledger_entries WHERE user_id = ${userId} AND period = ${periodOf(at)}`;
  return BigInt(row?.c ?? 0);
}

/** Estimates of the user's jobs that have not finished: reserved against the cost quota. */
export async function unfinishedEstimateMicros(db: DbOrTx, userId: string): Promise<bigint> {
  const [row] = await db.$queryRaw<{ e: bigint }[]>`
    SELECT COALESCE(sum(estimated_cost_micros), 0)::bigint AS e FROM simulation_jobs
    WHERE owner_id = ${userId} AND status IN ('PENDING', 'RUNNING')`;
  return BigInt(row?.e ?? 0);
}

export async function activeSingleJobs(db: DbOrTx, userId: string): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM simulation_jobs WHERE owner_id = ${userId} AND batch_id IS NULL AND status IN ('PENDING', 'RUNNING')`;
  return row?.n ?? 0;
}
