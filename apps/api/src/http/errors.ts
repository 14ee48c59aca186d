import { isDatabaseUnavailable } from "@simbatch/db";
import { AppError, describe, serviceUnavailable, validationError } from "@simbatch/errors";
import { isRedisUnavailable } from "@simbatch/queue";
import type { ErrorRequestHandler, Response } from "express";
import { locals } from "./request-context.ts";

/**
 * What a thrown value means to the client, or null for a bug (a 500). Postgres
 * or Redis being down is a 503, recognised by Prisma error codes and ioredis
 * error classes (packages/db, packages/queue), not by the text of a message.
 */
export function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; limit?: number };
  if (e?.type === "entity.too.large") return new AppError("PayloadTooLarge", { message: `Request body exceeds the limit of ${e.limit} bytes` });
  if (e?.type === "entity.parse.failed") return validationError([{ path: "", message: "Malformed JSON body" }]);
  // The router could not decode a path parameter (`/simulations/%ZZ`): no resource has such a name.
  if (err instanceof URIError) return new AppError("NotFound", { message: "Not found: the path holds malformed percent-encoding" });
  if (e?.status && e.status >= 400 && e.status < 500) return new AppError("ValidationError", { message: "Invalid request", detail: [] });
  if (isDatabaseUnavailable(err) || isRedisUnavailable(err)) return serviceUnavailable(err);
  return null;
}

export function sendError(res: Response, err: AppError): void {
  if (err.retryAfter !== undefined) res.setHeader("Retry-After", String(Math.max(0, Math.ceil(err.retryAfter))));
  if (err.code === "ServiceUnavailable" && !res.hasHeader("Retry-After")) res.setHeader("Retry-After", "5");
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).json({ error: err.code, message: err.message, detail: err.detail ?? null, request_id: locals(res).requestId, ...err.fields });
}

/** The one place errors become HTTP: the client reads the AppError's message, the logs its internal one; 500s hide internals and point at the request id. */
export const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  const appErr = toAppError(err);
  const { log, requestId } = locals(res);
  if (appErr) {
    if (appErr.status >= 500) log.warn("service unavailable", { error: appErr.internalMessage });
    return sendError(res, appErr);
  }
  log.error("unhandled error", { error: describe(err), stack: (err as Error)?.stack });
  sendError(res, new AppError("InternalError", { message: `Internal error; quote request id ${requestId} when reporting it` }));
};
