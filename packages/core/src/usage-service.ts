import type { Tier, TierLimits } from "@simbatch/config";
import { daysRemaining, periodOf } from "@simbatch/contracts";
import type { Db, DbOrTx } from "@simbatch/db";
import type { PendingCalls } from "@simbatch/queue";
import { usd } from "./deps.ts";
import { costUsedMicros, simulationsUsed } from "./usage-queries.ts";

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
    SELECT (COALESCE((SELECT api_calls FROM usage_periods WHERE user_id = ${userId} AND period = ${period}), 0)
      + COALESCE((SELECT sum(api_calls) FROM ledger_entries WHERE user_id = ${userId} AND period = ${period}), 0))::bigint AS n`;
  return Number(row?.n ?? 0);
}

/** Adds flushed API-call deltas in one statement per row, one transaction (all or nothing). */
export async function persistApiCalls(db: Db, rows: PendingCalls[]): Promise<void> {
  await db.$transaction(
    rows.map((r) => db.$executeRaw`
      INSERT INTO usage_periods (user_id, period, api_calls, updated_at) VALUES (${r.userId}, ${r.period}, ${BigInt(r.calls)}, now())
      ON CONFLICT (user_id, period) DO UPDATE SET api_calls = usage_periods.api_calls + EXCLUDED.api_calls, updated_at = now()`),
  );
}

async function tokensUsed(db: DbOrTx, userId: string, period: string): Promise<number> {
  const [row] = await db.$queryRaw<{ t: bigint }[]>`
    SELECT COALESCE(sum(tokens), 0)::bigint AS t FROM ledger_entries WHERE user_id = ${userId} AND period = ${period}`;
  return Number(row?.t ?? 0);
}

const remaining = (limit: number, used: number) => (limit < 0 ? -1 : Math.max(0, limit - used));
const hit = (limit: number, used: number) => limit >= 0 && used >= limit;

/** Current-period usage; `apiCallsUsed` comes from the live counter, not Postgres. */
export async function usageView(db: DbOrTx, user: { id: string; tier: Tier }, l: TierLimits, apiCallsUsed: number, now: Date): Promise<UsageView> {
  const period = periodOf(now);
  const [sims, costMicros, tokens] = await Promise.all([
    simulationsUsed(db, user.id, period),
    costUsedMicros(db, user.id, now),
    tokensUsed(db, user.id, period),
  ]);
  const cost = Number(costMicros);
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
 * Past periods with any usage, newest first, never `currentPeriod`. Simulations
 * run count as the quota does (admitted, less those cancelled before starting,
 * plus adjustments); completed and failed count in the month the job finished,
 * which is also the month its charge falls in.
 */
export async function usageHistory(db: DbOrTx, userId: string, currentPeriod: string, periods: number): Promise<UsageHistoryRow[]> {
  const rows = await db.$queryRaw<HistorySqlRow[]>`
    WITH p AS (
      SELECT period FROM usage_periods WHERE user_id = ${userId}
      UNION SELECT period FROM ledger_entries WHERE user_id = ${userId}
      UNION SELECT admitted_period FROM simulation_jobs WHERE owner_id = ${userId}
      UNION SELECT to_char(completed_at, 'YYYY-MM') FROM simulation_jobs WHERE owner_id = ${userId} AND completed_at IS NOT NULL
    ), t AS (
      SELECT p.period,
        COALESCE((SELECT api_calls FROM usage_periods u WHERE u.user_id = ${userId} AND u.period = p.period), 0)
          + COALESCE((SELECT sum(api_calls) FROM ledger_entries l WHERE l.user_id = ${userId} AND l.period = p.period), 0) AS api_calls,
        (SELECT count(*) FROM simulation_jobs j WHERE j.owner_id = ${userId} AND j.admitted_period = p.period
            AND NOT (j.status = 'CANCELLED' AND j.started_at IS NULL))
          + COALESCE((SELECT sum(simulations) FROM ledger_entries l WHERE l.user_id = ${userId} AND l.period = p.period), 0) AS simulations_run,
        (SELECT count(*) FROM simulation_jobs j WHERE j.owner_id = ${userId} AND j.status = 'COMPLETED' AND to_char(j.completed_at, 'YYYY-MM') = p.period) AS completed,
        (SELECT count(*) FROM simulation_jobs j WHERE j.owner_id = ${userId} AND j.status = 'FAILED' AND to_char(j.completed_at, 'YYYY-MM') = p.period) AS failed,
        COALESCE((SELECT sum(cost_micros) FROM ledger_entries l WHERE l.user_id = ${userId} AND l.period = p.period), 0) AS cost,
        COALESCE((SELECT sum(tokens) FROM ledger_entries l WHERE l.user_id = ${userId} AND l.period = p.period), 0) AS tokens
      FROM p WHERE p.period < ${currentPeriod}
    )
    SELECT period, api_calls::bigint, simulations_run::bigint, completed::bigint, failed::bigint, cost::bigint, tokens::bigint FROM t
    WHERE api_calls <> 0 OR simulations_run <> 0 OR completed <> 0 OR failed <> 0 OR cost <> 0 OR tokens <> 0
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
