import { createHash } from "node:crypto";
import type { Tier } from "@simbatch/config";
import { API_KEY_RE, newApiKey, newKeyId } from "@simbatch/contracts";
import { isRecordNotFound, rawOf, type Db } from "@simbatch/db";
import { AppError, notFound } from "@simbatch/errors";

export const hashKey = (key: string): string => createHash("sha256").update(key).digest("hex");

export interface AuthedUser {
  id: string;
  tier: Tier;
  keyId: string;
}

const iso = (d: Date) => d.toISOString();

/** Resolves an API key to its user; unknown, malformed and revoked keys are all 401. */
export async function authenticate(db: Db, key: string | undefined): Promise<AuthedUser> {
  if (!key) throw new AppError("Unauthorized", { message: "Missing API key: send it in the X-API-Key header" });
  if (!API_KEY_RE.test(key)) throw new AppError("Unauthorized", { message: "Invalid API key" });
  // On every authenticated request: one indexed read (key hash, joined to the user's tier).
  const [row] = await rawOf(db).$queryRaw<{ id: string; user_id: string; tier: Tier; revoked_at: Date | null; last_used_at: Date | null }[]>`
    SELECT k.id, k.user_id, u.tier::text AS tier, k.revoked_at, k.last_used_at
    FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ${hashKey(key)}`;
  if (!row || row.revoked_at) throw new AppError("Unauthorized", { message: row ? "API key has been revoked" : "Invalid API key" });
  // last_used_at is informational: at most one write a minute per key keeps it off the hot path.
  if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > 60_000) {
    void rawOf(db).$executeRaw`UPDATE api_keys SET last_used_at = now() WHERE id = ${row.id}`.catch(() => undefined);
  }
  return { id: row.user_id, tier: row.tier, keyId: row.id };
}

/** Creates a user (tier default free) or, when it exists, updates its tier if one is given. */
export async function upsertUser(
  db: Db,
  userId: string,
  tier: Tier | null,
): Promise<{ created: boolean; user: { user_id: string; tier: Tier; created_at: string } }> {
  // One statement, so that of concurrent creates of one id exactly one is told "created" (xmax is 0 only on a row this statement inserted).
  const [row] = await rawOf(db).$queryRaw<{ id: string; tier: Tier; created_at: Date; created: boolean }[]>`
    INSERT INTO users (id, tier) VALUES (${userId}, ${tier ?? "free"}::"Tier")
    ON CONFLICT (id) DO UPDATE SET tier = COALESCE(${tier}::"Tier", users.tier), updated_at = now()
    RETURNING id, tier::text AS tier, created_at, (xmax = 0) AS created`;
  return { created: row!.created, user: { user_id: row!.id, tier: row!.tier, created_at: iso(row!.created_at) } };
}

/** Sets a user's tier; an unknown user is a 404, any other failure (the database down) propagates. */
export async function updateUserTier(db: Db, userId: string, tier: Tier) {
  const user = await db.user.update({ where: { id: userId }, data: { tier } }).catch((err: unknown) => {
    if (isRecordNotFound(err)) throw notFound(`User ${userId}`);
    throw err;
  });
  return { user_id: user.id, tier: user.tier as Tier, created_at: iso(user.createdAt) };
}

/** Creates a key; the clear key is returned once and only its hash is stored. */
export async function createApiKey(db: Db, userId: string, name: string | null) {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user) throw notFound(`User ${userId}`);
  const key = newApiKey();
  const row = await db.apiKey.create({ data: { id: newKeyId(), userId, name, prefix: key.slice(0, 11), keyHash: hashKey(key) } });
  return { key_id: row.id, api_key: key, user_id: userId, tier: user.tier as Tier, name: row.name, prefix: row.prefix, created_at: iso(row.createdAt) };
}

export async function revokeApiKey(db: Db, keyId: string): Promise<void> {
  const res = await db.apiKey.updateMany({ where: { id: keyId, revokedAt: null }, data: { revokedAt: new Date() } });
  if (res.count === 0 && !(await db.apiKey.findUnique({ where: { id: keyId } }))) throw notFound(`API key ${keyId}`);
}
