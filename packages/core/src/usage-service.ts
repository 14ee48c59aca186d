import type { Tier, TierLimits } from "@simbatch/config";
import { daysRemaining, periodOf } from "@simbatch/contracts";
import type { Db, DbOrTx } from "@simbatch/db";
import type { PendingCalls } from "@simbatch/queue";
import { usd } from "./deps.ts";

/** The body of GET /simulations/batch/usage (and `current` of the history). */
export interface UsageView {
  user_id: string;
  tier: Tier;
  period: string;
  days_remaining: number;
  api_calls_used: number;
  simulations_used: number;
  cost_used_usd: number;
  tokens_used: number;
  api_calls_limit: number;
  simulations_limit: number;
  cost_limit_usd: number;
  max_batch_size: number;
  api_calls_remaining: number;
  simulations_remaining: number;
  cost_remaining_usd: number;
  is_quota_exceeded: boolean;
  quota_exceeded_reason: string | null;
}

export interface UsageHistoryRow {
  period: string;
  api_calls: number;
  simulations_run: number;
  simulations_completed: number;
  simulations_failed: number;
  cost_usd: number;
  tokens_used: number;
}

/** API calls Postgres knows of for a period: flushed counts plus operator adjustments. */
export async function apiCallsBase(db: DbOrTx, userId: string, period: string): Promise<number> {
  const [row] = await db.$queryRaw<{ n: bigint }[]>`
    SELECT (api_calls + ledger_api_calls)::bigint AS n FROM usage_periods WHERE user_id = ${userId} AND period = ${period}`;
  return Number(row?.n ?? 0);
}

/** Adds flushed API-call deltas in one statement per row, one transaction (all or nothing). */
export async function persistApiCalls(db: Db, rows: PendingCalls[]): Promise<void> {
  await db.$transaction(
    rows.map(
      (r) => db.$executeRaw`
      INSERT INTO usage_periods (user_id, period, api_calls, updated_at) VALUES (${r.userId}, ${r.period}, ${BigInt(r.calls)}, now())
      ON CONFLICT (user_id, period) DO UPDATE SET api_calls = usage_periods.api_calls + EXCLUDED.api_calls, updated_at = now()`,
    ),
  );
}

const remaining = (limit: number, used: number) => (limit < 0 ? -1 : Math.max(0, limit - used));
const hit = (limit: number, used: number) => limit >= 0 && used >= limit;

/** Current-period usage; `apiCallsUsed` comes from the live counter, not Postgres. */
export async function usageView(db: DbOrTx, user: { id: string; tier: Tier }, l: TierLimits, apiCallsUsed: number, now: Date): Promise<UsageView> {
  const period = periodOf(now);
  const [row] = await db.$queryRaw<{ sims: bigint; cost: bigint; tokens: bigint }[]>`
    SELECT simulations AS sims, cost_micros AS cost, tokens FROM usage_totals WHERE user_id = ${user.id} AND period = ${period}`;
  const sims = Number(row?.sims ?? 0);
  const cost = Number(row?.cost ?? 0);
  const tokens = Number(row?.tokens ?? 0);
  const reason = hit(l.apiCalls, apiCallsUsed)
    ? "API call quota exceeded"
    : hit(l.simulations, sims)
      ? "Simulation quota exceeded"
      : hit(l.costMicros, cost)
        ? "Cost quota exceeded"
        : null;
  return {
    user_id: user.id,
    tier: user.tier,
    period,
    days_remaining: daysRemaining(now),
    api_calls_used: apiCallsUsed,
    simulations_used: sims,
    cost_used_usd: usd(cost),
    tokens_used: tokens,
    api_calls_limit: l.apiCalls,
    simulations_limit: l.simulations,
    cost_limit_usd: l.costMicros < 0 ? -1 : usd(l.costMicros),
    max_batch_size: l.maxBatchSize,
    api_calls_remaining: remaining(l.apiCalls, apiCallsUsed),
    simulations_remaining: remaining(l.simulations, sims),
    cost_remaining_usd: l.costMicros < 0 ? -1 : usd(remaining(l.costMicros, cost)),
    is_quota_exceeded: reason !== null,
    quota_exceeded_reason: reason,
  };
}

interface HistorySqlRow {
  period: string;
  api_calls: bigint;
  simulations_run: bigint;
  completed: bigint;
  failed: bigint;
  cost: bigint;
  tokens: bigint;
}

/**
 * Past periods with any usage, newest first, never `currentPeriod`, from the
 * rollup (one row per period). Simulations run count as the quota does
 * (admitted, less those cancelled before starting, plus adjustments); completed
 * and failed count in the month the job finished, which is also the month its
 * charge falls in.
 */
export async function usageHistory(db: DbOrTx, userId: string, currentPeriod: string, periods: number): Promise<UsageHistoryRow[]> {
  const rows = await db.$queryRaw<HistorySqlRow[]>`
    SELECT period, (api_calls + ledger_api_calls)::bigint AS api_calls, simulations AS simulations_run, completed, failed,
      cost_micros AS cost, tokens
    FROM usage_totals
    WHERE user_id = ${userId} AND period < ${currentPeriod}
      AND (api_calls + ledger_api_calls <> 0 OR simulations <> 0 OR completed <> 0 OR failed <> 0 OR cost_micros <> 0 OR tokens <> 0)
    ORDER BY period DESC LIMIT ${periods}`;
  return rows.map((r) => ({
    period: r.period,
    api_calls: Number(r.api_calls),
    simulations_run: Number(r.simulations_run),
    simulations_completed: Number(r.completed),
    simulations_failed: Number(r.failed),
    cost_usd: usd(r.cost),
    tokens_used: Number(r.tokens),
  }));
}
