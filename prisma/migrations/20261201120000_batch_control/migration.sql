-- Batch control (contract: "Batch control, live progress and webhooks").

-- Pause: a paused batch starts no job (dispatch and claims skip it).
ALTER TABLE "batches" ADD COLUMN "paused" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "batches" ADD COLUMN "paused_at" TIMESTAMP(3);
-- Webhooks: where the batch's end is announced, and when that announcement was handed
-- to the webhooks queue (null while owed: the reconciler's sweep hands over what a
-- crash between the batch's end and the enqueue left behind).
ALTER TABLE "batches" ADD COLUMN "webhook_url" TEXT;
ALTER TABLE "batches" ADD COLUMN "webhook_enqueued_at" TIMESTAMP(3);
ALTER TABLE "batches" ADD CONSTRAINT "batches_webhook_url_length" CHECK (char_length("webhook_url") <= 2000);
CREATE INDEX "batches_webhook_owed_idx" ON "batches" ("completed_at")
  WHERE "webhook_url" IS NOT NULL AND "completed_at" IS NOT NULL AND "webhook_enqueued_at" IS NULL;

-- Idempotency keys: one row per (user, route, key), written in the transaction that
-- admits the work, with the response to replay. Kept 24 h (the reconciler deletes older rows).
CREATE TABLE "idempotency_keys" (
  "user_id" TEXT NOT NULL REFERENCES "users"("id") ON DELETE CASCADE,
  "route" TEXT NOT NULL,
  "key" TEXT NOT NULL,
  "request_hash" TEXT NOT NULL,
  "response_status" INTEGER NOT NULL,
  "response_body" JSONB NOT NULL,
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("user_id", "route", "key")
);
CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys" ("created_at");

-- Webhook signing secrets: the current one, and the one it replaced (still signed
-- with for a grace period after a rotation, so receivers can switch without loss).
CREATE TABLE "webhook_secrets" (
  "user_id" TEXT NOT NULL PRIMARY KEY REFERENCES "users"("id") ON DELETE CASCADE,
  "secret" TEXT NOT NULL,
  "previous_secret" TEXT,
  "rotated_at" TIMESTAMP(3),
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- One row per delivery attempt.
CREATE TABLE "webhook_deliveries" (
  "id" BIGSERIAL PRIMARY KEY,
  "webhook_id" TEXT NOT NULL,
  "batch_id" TEXT NOT NULL REFERENCES "batches"("id") ON DELETE CASCADE,
  "type" TEXT NOT NULL,
  "attempt" INTEGER NOT NULL,
  "status_code" INTEGER,
  "error" TEXT,
  "delivered" BOOLEAN NOT NULL,
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT "webhook_deliveries_attempt_key" UNIQUE ("webhook_id", "attempt")
);
CREATE INDEX "webhook_deliveries_batch_idx" ON "webhook_deliveries" ("batch_id", "id");
CREATE INDEX "webhook_deliveries_failed_idx" ON "webhook_deliveries" ("created_at") WHERE NOT "delivered";
