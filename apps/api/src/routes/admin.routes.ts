import { TIERS } from "@simbatch/config";
import { PERIOD_RE, periodOf } from "@simbatch/contracts";
import { createApiKey, createUsageAdjustment, revokeApiKey, updateUserTier, upsertUser } from "@simbatch/core";
import type { RequestHandler } from "express";
import { z } from "zod";
import type { ApiDeps } from "../deps.ts";
import { locals } from "../http/request-context.ts";
import { parse } from "../http/validate.ts";

const tier = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.enum(TIERS));
export const CreateUserSchema = z.object({
  user_id: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, "must be 1-64 characters of letters, digits, . _ @ -"),
  tier: tier.nullish(),
});
export const UpdateUserSchema = z.object({ tier });
export const CreateKeySchema = z.object({ name: z.string().max(100).nullish() });
const count = z.number().int().min(-1_000_000_000).max(1_000_000_000);
export const UsageAdjustmentSchema = z
  .object({
    period: z.string().regex(PERIOD_RE, "must be YYYY-MM").nullish(),
    api_calls: count.nullish(),
    simulations: count.nullish(),
    // Whole micro-dollars only, so the ledger stays exact.
    cost_usd: z
      .number()
      .min(-1_000_000)
      .max(1_000_000)
      .refine((n) => Math.abs(n * 1e6 - Math.round(n * 1e6)) < 1e-6, "at most 6 decimals")
      .nullish(),
    tokens: count.nullish(),
    reason: z.string().trim().min(1, "is required").max(500),
  })
  .refine((b) => [b.api_calls, b.simulations, b.cost_usd, b.tokens].some((n) => n != null && n !== 0), {
    message: "at least one of api_calls, simulations, cost_usd, tokens must be non-zero",
  });

export function adminHandlers(deps: ApiDeps) {
  const createUser: RequestHandler = async (req, res) => {
    const body = parse(CreateUserSchema, req.body);
    const { created, user } = await upsertUser(deps.db, body.user_id, body.tier ?? null);
    locals(res).log.info(created ? "user created" : "user tier updated", { user_id: user.user_id, tier: user.tier });
    res.status(created ? 201 : 200).json(user);
  };

  const updateUser: RequestHandler = async (req, res) => {
    const body = parse(UpdateUserSchema, req.body);
    res.json(await updateUserTier(deps.db, String(req.params.user_id), body.tier));
  };

  const createKey: RequestHandler = async (req, res) => {
    const body = parse(CreateKeySchema, req.body);
    const key = await createApiKey(deps.db, String(req.params.user_id), body.name ?? null);
    locals(res).log.info("api key created", { user_id: key.user_id, key_id: key.key_id, prefix: key.prefix });
    res.status(201).json(key);
  };

  const revokeKey: RequestHandler = async (req, res) => {
    await revokeApiKey(deps.db, String(req.params.key_id));
    locals(res).log.info("api key revoked", { key_id: req.params.key_id });
    res.status(204).end();
  };

  const adjustUsage: RequestHandler = async (req, res) => {
    const body = parse(UsageAdjustmentSchema, req.body);
    const userId = String(req.params.user_id);
    const period = body.period ?? periodOf(deps.clock.now());
    const adj = await createUsageAdjustment(deps.db, userId, {
      period,
      apiCalls: body.api_calls ?? 0,
      simulations: body.simulations ?? 0,
      costMicros: Math.round((body.cost_usd ?? 0) * 1_000_000),
      tokens: body.tokens ?? 0,
      reason: body.reason,
    });
    // The quota gate reads the live Redis count; Postgres alone would only show it after a re-seed.
    if (adj.api_calls !== 0) await deps.apiCalls?.adjust(userId, period, adj.api_calls);
    locals(res).log.info("usage adjusted", { user_id: userId, adjustment_id: adj.adjustment_id, period });
    res.status(201).json(adj);
  };

  return { createUser, updateUser, createKey, revokeKey, adjustUsage };
}
