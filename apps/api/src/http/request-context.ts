import type { Logger } from "@simbatch/logger";
import { newRequestId } from "@simbatch/contracts";
import type { AuthedUser } from "@simbatch/core";
import type { NextFunction, Request, RequestHandler, Response } from "express";

const CLIENT_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export interface Locals {
  requestId: string;
  log: Logger;
  user?: AuthedUser;
  /** Why the body could not be read (an unsupported Content-Encoding, say): a 422 once auth has passed. */
  unreadableBody?: string;
}

export const locals = (res: Response): Locals => res.locals as Locals;

/** Echoes a sane client X-Request-Id or makes one; binds it to a child logger. */
export function requestContext(logger: Logger): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const given = req.header("x-request-id");
    const requestId = given && CLIENT_ID_RE.test(given) ? given : newRequestId();
    res.setHeader("X-Request-Id", requestId);
    const started = process.hrtime.bigint();
    // Read now: a mounted app (the queue board) strips its mount path from req.path while it answers.
    const path = req.path;
    Object.assign(res.locals, { requestId, log: logger.child({ request_id: requestId }) });
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      locals(res).log.info("request", {
        method: req.method,
        path,
        status: res.statusCode,
        duration_ms: Math.round(ms * 10) / 10,
        user_id: locals(res).user?.id,
      });
    });
    next();
  };
}
