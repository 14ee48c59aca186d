import { AppError } from "@simbatch/errors";
import express, { type RequestHandler } from "express";
import { locals } from "./request-context.ts";

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
      if (!err) return next();
      const e = err as { type?: string; encoding?: string; message?: string };
      if (e.type === "entity.too.large") return next(tooLarge(maxBodyBytes));
      // Any other unreadable body is the client's input problem: it is told after
      // auth and the quotas (jsonBody), as the order of checks wants, not before them.
      const encoding = req.header("content-encoding") ?? "identity";
      locals(res).unreadableBody =
        e.type === "encoding.unsupported"
          ? `Unsupported Content-Encoding "${e.encoding}": send the body uncompressed, or as gzip, deflate or br`
          : encoding !== "identity"
            ? `Unreadable request body: it is not valid ${encoding} data (${e.message ?? "decompression failed"})`
            : `Unreadable request body: ${e.message ?? "read failed"}`;
      req.body = Buffer.alloc(0);
      next();
    });
  };
}
