import { createHash } from "node:crypto";
import type { DbOrTx, Raw } from "@simbatch/db";
import { AppError } from "@simbatch/errors";

/** How long a key's response is replayed (contract: kept 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

/** Advisory-lock class of idempotency keys (the two-int lock space; dispatch uses the one-bigint space). */
const IDEMPOTENCY_LOCK_CLASS = 0x1de7;

/** A create carrying an Idempotency-Key: scoped to the user and the route. */
export interface IdempotentRequest {
  userId: string;
  route: "POST /simulations" | "POST /simulations/batch";
  key: string;
  /** Hash of the body after JSON parsing (key order and whitespace do not matter): see requestHash. */
  hash: string;
}

/** The response the first request got, replayed to later ones. */
export interface StoredResponse {
  status: number;
  body: unknown;
}

/** JSON with object keys sorted at every depth: equal for bodies that parse to the same value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export const requestHash = (body: unknown): string =>
  createHash("sha256")
    .update(canonicalJson(body ?? null))
    .digest("hex");

/**
 * First step of a create's transaction when it carries a key. Takes the key's
 * transaction-scoped advisory lock without waiting: a request that finds it held
 * arrived while the first is being admitted (409, retry in a second). Holding
 * it, reads the stored response: the same body replays it, another body is 422.
 * Null: the key is new (or expired), and the caller admits and then calls
 * `rememberResponse` in the same transaction, so a key stands for at most one
 * admission however many requests race on it, and a refused request (its
 * transaction rolled back) leaves the key free.
 */
export async function claimIdempotencyKey(tx: Raw, r: IdempotentRequest, now: Date): Promise<StoredResponse | null> {
  const lockName = `${r.userId} ${r.route} ${r.key}`;
  const [lock] = await tx.$queryRaw<{ ok: boolean }[]>`SELECT pg_try_advisory_xact_lock(${IDEMPOTENCY_LOCK_CLASS}::int, hashtext(${lockName})) AS ok`;
  if (!lock?.ok) {
    throw new AppError("IdempotencyKeyInProgress", {
      message: `A request with Idempotency-Key "${r.key}" is still being processed; retry after it completes`,
      retryAfter: 1,
    });
  }
  const since = new Date(now.getTime() - IDEMPOTENCY_TTL_MS);
  const [row] = await tx.$queryRaw<{ request_hash: string; response_status: number; response_body: unknown }[]>`
    SELECT request_hash, response_status, response_body FROM idempotency_keys
    WHERE user_id = ${r.userId} AND route = ${r.route} AND key = ${r.key} AND created_at > ${since}`;
  if (!row) return null;
  if (row.request_hash !== r.hash) {
    throw new AppError("IdempotencyKeyReused", {
      message: `Idempotency-Key "${r.key}" was already used with a different request body; use a new key for a different request`,
    });
  }
  return { status: row.response_status, body: row.response_body };
}

/** Stores the response of an admitted create under its key (an expired record of the key is replaced). */
export async function rememberResponse(tx: Raw, r: IdempotentRequest, res: StoredResponse, now: Date): Promise<void> {
  const body = JSON.stringify(res.body);
  await tx.$executeRaw`
    INSERT INTO idempotency_keys (user_id, route, key, request_hash, response_status, response_body, created_at)
    VALUES (${r.userId}, ${r.route}, ${r.key}, ${r.hash}, ${res.status}, ${body}::json, ${now})
    ON CONFLICT (user_id, route, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
      response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at`;
}

/** Deletes up to `limit` records older than the retention; returns how many (the reconciler repeats while it is `limit`). */
export async function expireIdempotencyKeys(db: DbOrTx, now: Date, limit = 1000): Promise<number> {
  const before = new Date(now.getTime() - IDEMPOTENCY_TTL_MS);
  return db.$executeRaw`
    DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE created_at <= ${before} LIMIT ${limit})`;
}
