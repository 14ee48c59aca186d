import { TIERS } from "@simbatch/config";
import { createApiKey, revokeApiKey, updateUserTier, upsertUser } from "@simbatch/core";
import type { RequestHandler } from "express";
import { z } from "zod";
import type { ApiDeps } from "../deps.ts";
import { locals } from "../http/request-context.ts";
import { parse } from "../http/validate.ts";

const tier = z.string().transform((s) => s.toLowerCase()).pipe(z.enum(TIERS));
export const CreateUserSchema = z.object({
  user_id: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, "must be 1-64 characters of letters, digits, . _ @ -"),
  tier: tier.nullish(),
});
const UpdateUserSchema = z.object({ tier });
const CreateKeySchema = z.object({ name: z.string().max(100).nullish() });

export function adminHandlers(deps: ApiDeps) {
  const createUser: RequestHandler = async (req, res) => {
    const body = parse(CreateUserSchema, req.body);
    const { created, user } = await upsertUser(deps.db, body.user_id, body.tier ?? "free");
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

  return { createUser, updateUser, createKey, revokeKey };
}
