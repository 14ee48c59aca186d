import { IdempotencyKeySchema } from "@simbatch/contracts";
import { requestHash, type IdempotentRequest, type StoredResponse } from "@simbatch/core";
import { validationError } from "@simbatch/errors";
import type { Request, Response } from "express";

/** The request's Idempotency-Key as the domain takes it, or null without one (422 when malformed). */
export function idempotentRequest(req: Request, userId: string, route: IdempotentRequest["route"]): IdempotentRequest | null {
  const key = req.header("idempotency-key");
  if (key === undefined) return null;
  const parsed = IdempotencyKeySchema.safeParse(key);
  if (!parsed.success) throw validationError([{ path: "Idempotency-Key", message: parsed.error.issues[0]?.message ?? "invalid" }]);
  return { userId, route, key: parsed.data, hash: requestHash(req.body) };
}

/** Sends a stored response again (contract: same status and body, `Idempotent-Replayed: true`). */
export function sendReplay(res: Response, replay: StoredResponse): void {
  res.setHeader("Idempotent-Replayed", "true");
  res.status(replay.status).json(replay.body);
}
