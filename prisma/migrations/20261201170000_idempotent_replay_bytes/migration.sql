-- A replay answers the first response's body as it was written: json keeps the
-- text (key order included), where jsonb stored it re-ordered.
ALTER TABLE "idempotency_keys" ALTER COLUMN "response_body" SET DATA TYPE JSON USING "response_body"::json;
