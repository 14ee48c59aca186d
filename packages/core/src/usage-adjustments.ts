import { periodOf, usdToMicros, type UsageAdjustmentRequest } from "@simbatch/contracts";
import type { Db } from "@simbatch/db";
import { notFound } from "@simbatch/errors";
import { usd } from "./deps.ts";

export interface AdjustmentInput {
  period: string;
  apiCalls: number;
  simulations: number;
  costMicros: number;
  tokens: number;
  reason: string;
}

export interface AdjustmentView {
  adjustment_id: string;
  user_id: string;
  period: string;
  api_calls: number;
  simulations: number;
  cost_usd: number;
  tokens: number;
  reason: string;
  created_at: string;
}

/**
 * An operator entry in the usage ledger (kind ADJUSTMENT, no job): every usage
 * figure sums the ledger, so the entry shows in usage, history and admission at
 * once. Positive numbers add usage, negative ones credit it back.
 */
export async function createUsageAdjustment(db: Db, userId: string, input: AdjustmentInput): Promise<AdjustmentView> {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user) throw notFound(`User ${userId}`);
  const row = await db.ledgerEntry.create({
    data: {
      userId,
      period: input.period,
      kind: "ADJUSTMENT",
      apiCalls: BigInt(input.apiCalls),
      simulations: input.simulations,
      costMicros: BigInt(input.costMicros),
      tokens: BigInt(input.tokens),
      reason: input.reason,
    },
  });
  return {
    adjustment_id: `adj_${row.id}`,
    user_id: userId,
    period: row.period,
    api_calls: Number(row.apiCalls),
    simulations: row.simulations,
    cost_usd: usd(row.costMicros),
    tokens: Number(row.tokens),
    reason: input.reason,
    created_at: row.createdAt.toISOString(),
  };
}

/**
 * `POST /admin/users/{user_id}/usage-adjustments` and the admin CLI's `usage adjust`:
 * the request's defaults (the current period, zeros), the ledger entry, then the live
 * API-call count moved by `applyLive` when the entry counts API calls.
 */
export async function applyUsageAdjustment(
  db: Db,
  userId: string,
  body: UsageAdjustmentRequest,
  now: Date,
  applyLive?: (userId: string, period: string, apiCalls: number) => Promise<void>,
): Promise<AdjustmentView> {
  const adj = await createUsageAdjustment(db, userId, {
    period: body.period ?? periodOf(now),
    apiCalls: body.api_calls ?? 0,
    simulations: body.simulations ?? 0,
    costMicros: usdToMicros(body.cost_usd ?? 0),
    tokens: body.tokens ?? 0,
    reason: body.reason,
  });
  if (adj.api_calls !== 0 && applyLive) await applyLive(userId, adj.period, adj.api_calls);
  return adj;
}
