import { createHmac, randomBytes } from "node:crypto";
import { Prisma, type DbOrTx } from "@simbatch/db";
import type { CoreDeps } from "./deps.ts";

/** The event types of a batch's end (contract: Webhooks), by the batch's final status. */
export const WEBHOOK_TYPES = {
  COMPLETED: "batch.completed",
  PARTIAL: "batch.partial",
  FAILED: "batch.failed",
  CANCELLED: "batch.cancelled",
} as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[keyof typeof WEBHOOK_TYPES];

/** Attempts per event (contract: up to 8). */
export const WEBHOOK_MAX_ATTEMPTS = 8;

/** How long a rotated-out secret still signs deliveries beside the new one. */
export const SECRET_GRACE_MS = 24 * 3600_000;

/** Stable per event: a batch ends once, so its end has one id (the receiver's dedupe key). */
export const webhookIdOf = (batchId: string): string => `msg_${batchId}`;

/** A new signing secret: `whsec_` + base64 of 32 random bytes (the Standard Webhooks form). */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString("base64")}`;

/**
 * Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `<id>.<timestamp>.<body>`,
 * keyed with the base64-decoded part of the secret after `whsec_`.
 */
export function signWebhook(secret: string, webhookId: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  return `v1,${createHmac("sha256", key).update(`${webhookId}.${timestampSeconds}.${body}`).digest("base64")}`;
}

/** The `webhook-signature` header: one signature per secret in force, space-separated. */
export const signatureHeader = (secrets: string[], webhookId: string, timestampSeconds: number, body: string): string =>
  secrets.map((s) => signWebhook(s, webhookId, timestampSeconds, body)).join(" ");

interface SecretRow {
  secret: string;
  previous_secret: string | null;
  rotated_at: Date | null;
}

/**
 * The user's secrets row, created on first need (concurrent first requests agree:
 * the insert is a no-op for all but one, and all read its row).
 */
async function secretRow(db: DbOrTx, userId: string): Promise<SecretRow> {
  const read = () => db.$queryRaw<SecretRow[]>`SELECT secret, previous_secret, rotated_at FROM webhook_secrets WHERE user_id = ${userId}`;
  const [row] = await read();
  if (row) return row;
  await db.$executeRaw`INSERT INTO webhook_secrets (user_id, secret) VALUES (${userId}, ${newWebhookSecret()}) ON CONFLICT (user_id) DO NOTHING`;
  return (await read())[0]!;
}

/** The user's signing secret (GET /webhooks/secret): created on first request, stable after. */
export async function webhookSecret(db: DbOrTx, userId: string): Promise<string> {
  return (await secretRow(db, userId)).secret;
}

/** A new secret; the one it replaces keeps signing beside it for SECRET_GRACE_MS. */
export async function rotateWebhookSecret(db: DbOrTx, userId: string): Promise<string> {
  const secret = newWebhookSecret();
  await db.$executeRaw`
    INSERT INTO webhook_secrets (user_id, secret) VALUES (${userId}, ${secret})
    ON CONFLICT (user_id) DO UPDATE SET previous_secret = webhook_secrets.secret, rotated_at = now(), secret = EXCLUDED.secret`;
  return secret;
}

/** The secrets a delivery is signed with now: the current one, and the previous one within its grace period. */
export async function signingSecrets(db: DbOrTx, userId: string, now: Date): Promise<string[]> {
  const row = await secretRow(db, userId);
  const inGrace = row.previous_secret !== null && row.rotated_at !== null && now.getTime() - row.rotated_at.getTime() < SECRET_GRACE_MS;
  return inGrace ? [row.secret, row.previous_secret!] : [row.secret];
}

/**
 * Hands the ends of these batches to the webhooks queue (those with a URL, ended,
 * and not handed over yet), then marks them handed over. Enqueueing is keyed by
 * the webhook id, so a repeat (a crash between the two steps) is a no-op.
 */
export async function announceBatchEnds(deps: Pick<CoreDeps, "db" | "webhooks">, batchIds: string[]): Promise<number> {
  if (batchIds.length === 0) return 0;
  const rows = await deps.db.$queryRaw<{ id: string; status: keyof typeof WEBHOOK_TYPES; completed_at: Date }[]>`
    SELECT id, status::text, completed_at FROM batches
    WHERE id IN (${Prisma.join(batchIds)}) AND webhook_url IS NOT NULL AND completed_at IS NOT NULL AND webhook_enqueued_at IS NULL`;
  for (const r of rows) {
    await deps.webhooks.enqueue({ webhookId: webhookIdOf(r.id), batchId: r.id, type: WEBHOOK_TYPES[r.status], createdAt: r.completed_at.toISOString() });
  }
  if (rows.length > 0) {
    await deps.db.$executeRaw`UPDATE batches SET webhook_enqueued_at = now() WHERE id IN (${Prisma.join(rows.map((r) => r.id))})`;
  }
  return rows.length;
}

/** Sweep: ended batches whose webhook was never handed over (a crash after the end's commit), oldest first. */
export async function announceOwedWebhooks(deps: Pick<CoreDeps, "db" | "webhooks">, limit = 100): Promise<number> {
  const rows = await deps.db.$queryRaw<{ id: string }[]>`
    SELECT id FROM batches WHERE webhook_url IS NOT NULL AND completed_at IS NOT NULL AND webhook_enqueued_at IS NULL
    ORDER BY completed_at LIMIT ${limit}`;
  return announceBatchEnds(
    deps,
    rows.map((r) => r.id),
  );
}

/** What the log says of an attempt until its answer is written: in flight, or its sender stopped (a crash, a deploy). */
export const UNANSWERED_ATTEMPT = "no answer recorded: the attempt is in flight, or its deliverer stopped before the answer came";

/**
 * Opens the next attempt of a webhook in its log, before anything is sent: its
 * number follows the log's (not the queue's count, which a stalled job keeps), so
 * every POST a receiver sees has its row and the cap counts POSTs. Null when the
 * event was delivered already or WEBHOOK_MAX_ATTEMPTS attempts are logged: nothing
 * is to be sent.
 */
export async function beginDelivery(db: DbOrTx, d: { webhookId: string; batchId: string; type: string }): Promise<number | null> {
  const [row] = await db.$queryRaw<{ attempt: number }[]>`
    WITH prior AS (
      SELECT coalesce(max(attempt), 0) AS n, coalesce(bool_or(delivered), false) AS done FROM webhook_deliveries WHERE webhook_id = ${d.webhookId}
    )
    INSERT INTO webhook_deliveries (webhook_id, batch_id, type, attempt, status_code, error, delivered)
    SELECT ${d.webhookId}, ${d.batchId}, ${d.type}, prior.n + 1, NULL, ${UNANSWERED_ATTEMPT}, false
    FROM prior WHERE NOT prior.done AND prior.n < ${WEBHOOK_MAX_ATTEMPTS}
    RETURNING attempt`;
  return row?.attempt ?? null;
}

/** Writes an attempt's answer into the row beginDelivery opened. */
export async function finishDelivery(
  db: DbOrTx,
  d: { webhookId: string; attempt: number; statusCode: number | null; error: string | null; delivered: boolean },
): Promise<void> {
  await db.$executeRaw`
    UPDATE webhook_deliveries SET status_code = ${d.statusCode}, error = ${d.error}, delivered = ${d.delivered}, created_at = now()
    WHERE webhook_id = ${d.webhookId} AND attempt = ${d.attempt}`;
}

export interface DeliveryRow {
  webhook_id: string;
  type: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  delivered: boolean;
  created_at: Date;
}

/** A batch's delivery log, oldest first. */
export async function batchDeliveries(db: DbOrTx, batchId: string): Promise<DeliveryRow[]> {
  return db.$queryRaw<DeliveryRow[]>`
    SELECT webhook_id, type, attempt, status_code, error, delivered, created_at FROM webhook_deliveries WHERE batch_id = ${batchId} ORDER BY id`;
}

/**
 * Delivery attempts that failed, in all (operators' metric, a counter): an attempt
 * with no answer written yet is not one, or the count would fall when it succeeds.
 */
export async function failedDeliveries(db: DbOrTx): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM webhook_deliveries WHERE NOT delivered AND error IS DISTINCT FROM ${UNANSWERED_ATTEMPT}`;
  return row?.n ?? 0;
}
