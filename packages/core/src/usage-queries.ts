import { periodOf } from "@simbatch/contracts";
import type { DbOrTx } from "@simbatch/db";

/**
 * Quota figures from the usage rollup (usage_totals) and the user's counters
 * (user_totals), kept by triggers in the transactions that change jobs and the
 * ledger: a row or two, plus at most 8 admission shard rows. None of these
 * reads grows with a user's history.
 */

/**
 * Simulations used in a period: admitted jobs, less those cancelled before they
 * started (their reservation is given back), plus operator adjustments.
 */
export async function simulationsUsed(db: DbOrTx, userId: string, period: string): Promise<number> {
  const [row] = await db.$queryRaw<{ n: bigint }[]>`
    SELECT simulations AS n FROM usage_totals WHERE user_id = ${userId} AND period = ${period}`;
  return Number(row?.n ?? 0);
}

/** Charges (and adjustments) in the period of `at`, from the ledger's rollup. */
export async function costUsedMicros(db: DbOrTx, userId: string, at: Date): Promise<bigint> {
  const [row] = await db.$queryRaw<{ c: bigint }[]>`
    SELECT cost_micros AS c FROM usage_periods WHERE user_id = ${userId} AND period = ${periodOf(at)}`;
  return BigInt(row?.c ?? 0);
}

/** Estimates of the user's jobs that have not finished: reserved against the cost quota. */
export async function unfinishedEstimateMicros(db: DbOrTx, userId: string): Promise<bigint> {
  const [row] = await db.$queryRaw<{ e: bigint }[]>`
    SELECT unfinished_estimate_micros AS e FROM user_totals WHERE user_id = ${userId}`;
  return BigInt(row?.e ?? 0);
}

export async function activeSingleJobs(db: DbOrTx, userId: string): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`
    SELECT unfinished_single_jobs AS n FROM user_totals WHERE user_id = ${userId}`;
  return row?.n ?? 0;
}

/** What admission checks, in one read: the period's rollup and the user's counters. */
export interface QuotaState {
  simulationsUsed: number;
  costUsedMicros: bigint;
  reservedMicros: bigint;
  activeSingleJobs: number;
}

export async function quotaState(db: DbOrTx, userId: string, period: string): Promise<QuotaState> {
  const [row] = await db.$queryRaw<{ sims: bigint | null; cost: bigint | null; reserved: bigint | null; singles: number | null }[]>`
    SELECT (SELECT simulations FROM usage_totals WHERE user_id = ${userId} AND period = ${period}) AS sims,
      (SELECT cost_micros FROM usage_periods WHERE user_id = ${userId} AND period = ${period}) AS cost,
      c.unfinished_estimate_micros AS reserved, c.unfinished_single_jobs AS singles
    FROM (SELECT 1) one LEFT JOIN user_totals c ON c.user_id = ${userId}`;
  return {
    simulationsUsed: Number(row?.sims ?? 0),
    costUsedMicros: BigInt(row?.cost ?? 0),
    reservedMicros: BigInt(row?.reserved ?? 0),
    activeSingleJobs: row?.singles ?? 0,
  };
}
