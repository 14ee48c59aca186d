import { AppError, validationError } from "@simbatch/errors";
import type { ErrorRequestHandler, Response } from "express";
import { locals } from "./request-context.ts";

const UNAVAILABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Connection terminated|connection is closed|Can't reach database|Stream isn't writeable|MaxRetriesPerRequest|Connection is closed|P1001|P1017|timeout exceeded when trying to connect|ServiceUnavailable/i;

/** Postgres or Redis being down is a 503, not a bug. */
function isUnavailable(err: unknown): boolean {
  const e = err as { message?: string; code?: string; name?: string; cause?: unknown };
  const text = `${e?.name ?? ""} ${e?.code ?? ""} ${e?.message ?? ""} ${String((e?.cause as { message?: string })?.message ?? "")}`;
  return UNAVAILABLE.test(text);
}

function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; limit?: number };
  if (e?.type === "entity.too.large") return new AppError("PayloadTooLarge", { message: `Request body exceeds the limit of ${e.limit} bytes` });
  if (e?.type === "entity.parse.failed") return validationError([{ path: "", message: "Malformed JSON body" }]);
  if (e?.status && e.status >= 400 && e.status < 500) return new AppError("ValidationError", { message: "Invalid request", detail: [] });
  if (isUnavailable(err))
    return new AppError("ServiceUnavailable", { message: "A backing service (Postgres or Redis) is unavailable; nothing was changed, try again shortly" });
  return null;
}

export function sendError(res: Response, err: AppError): void {
  if (err.retryAfter !== undefined) res.setHeader("Retry-After", String(Math.max(0, Math.ceil(err.retryAfter))));
  if (err.code === "ServiceUnavailable" && !res.hasHeader("Retry-After")) res.setHeader("Retry-After", "5");
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).json({ error: err.code, message: err.message, detail: err.detail ?? null, request_id: locals(res).requestId, ...err.fields });
}

/** The one place errors become HTTP: 500s hide internals and point at the request id. */
export const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  const appErr = toAppError(err);
  const { log, requestId } = locals(res);
  if (appErr) {
    if (appErr.status >= 500) log.warn("service unavailable", { error: String((err as Error)?.message ?? err) });
    return sendError(res, appErr);
  }
  log.error("unhandled error", { error: (err as Error)?.message, stack: (err as Error)?.stack });
  sendError(res, new AppError("InternalError", { message: `Internal error; quote request id ${requestId} when reporting it` }));
};
