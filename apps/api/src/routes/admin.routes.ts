import { CreateKeySchema, CreateUserSchema, UpdateUserSchema, UsageAdjustmentSchema } from "@simbatch/contracts";
import { applyUsageAdjustment, createApiKey, revokeApiKey, updateUserTier, upsertUser } from "@simbatch/core";
import type { RequestHandler } from "express";
import type { ApiDeps } from "../deps.ts";
import { locals } from "../http/request-context.ts";
import { parse } from "../http/validate.ts";

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
    // The quota gate reads the live Redis count; Postgres alone would only show it after a re-seed.
    const counter = deps.apiCalls;
    const adj = await applyUsageAdjustment(deps.db, userId, body, deps.clock.now(), counter ? (u, p, n) => counter.adjust(u, p, n) : undefined);
    locals(res).log.info("usage adjusted", { user_id: userId, adjustment_id: adj.adjustment_id, period: adj.period });
    res.status(201).json(adj);
  };

  return { createUser, updateUser, createKey, revokeKey, adjustUsage };
}
