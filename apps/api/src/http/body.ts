import { AppError } from "@simbatch/errors";
import express, { type RequestHandler } from "express";

const tooLarge = (limit: number) =>
  new AppError("PayloadTooLarge", {
    message: `Request body exceeds the limit of ${limit} bytes`,
    // The rest of the body is never read: the connection closes after the answer.
    headers: { Connection: "close" },
  });

/**
 * First check on every request, before routing and auth: a declared
 * Content-Length over the limit is refused at once, without reading a byte of
 * the body, and the connection is closed after the answer.
 */
export function contentLengthGuard(maxBodyBytes: number): RequestHandler {
  return (req, _res, next) => {
    const declared = req.header("content-length");
    if (declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared) > maxBodyBytes) return next(tooLarge(maxBodyBytes));
    next();
  };
}

/**
 * Reads the body as raw bytes, up to the limit (a chunked body that grows past
 * it is cut off with 413). Only routes that take a body use it; on the others
 * the body is never buffered.
 */
export function readBody(maxBodyBytes: number): RequestHandler {
  const raw = express.raw({ type: () => true, limit: maxBodyBytes });
  return (req, res, next) => {
    raw(req, res, (err?: unknown) => {
      if ((err as { type?: string } | undefined)?.type === "entity.too.large") return next(tooLarge(maxBodyBytes));
      next(err as Error | undefined);
    });
  };
}
