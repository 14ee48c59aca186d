import { periodOf } from "@simbatch/contracts";
import type { Raw } from "@simbatch/db";

/**
 * Quota figures come from the usage rollup (usage_periods / usage_totals) and
 * the user's counters (user_totals), kept by triggers in the transactions that
 * change jobs and the ledger: a row or two, plus at most 8 admission shard rows.
 * None of these reads grows with a user's history. Admission reads them all in
 * one statement (admission.ts); the stop rules read the period's cost here.
 */

/** Charges (and adjustments) in the period of `at`, from the ledger's rollup. */
export async function costUsedMicros(db: Raw, userId: string, at: Date): Promise<bigint> {
  const [row] = await db.$queryRaw<{ c: bigint }[]>`
    SELECT cost_micros AS c FROM usage_periods WHERE user_id = ${userId} AND period = ${periodOf(at)}`;
  return BigInt(row?.c ?? 0);
}

/** What admission checks: the period's rollup and the user's counters. */
export interface QuotaState {
  simulationsUsed: number;
  costUsedMicros: bigint;
  reservedMicros: bigint;
  activeSingleJobs: number;
}
