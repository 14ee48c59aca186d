import { authenticate } from "@simbatch/core";
import type { Db } from "@simbatch/db";
import { AppError, validationError } from "@simbatch/errors";
import type { RequestHandler } from "express";
import { locals } from "./request-context.ts";

export function requireApiKey(db: Db): RequestHandler {
  return (req, res, next) => {
    authenticate(db, req.header("x-api-key"))
      .then((user) => {
        locals(res).user = user;
        locals(res).log = locals(res).log.child({ user_id: user.id });
        next();
      })
      .catch(next);
  };
}

/**
 * Routes that take a body read it raw first (readBody, before auth, so 413 still
 * comes first); JSON is parsed here, after auth and the quotas, as the check order wants.
 */
export const jsonBody: RequestHandler = (req, res, next) => {
  const unreadable = locals(res).unreadableBody;
  if (unreadable) return next(validationError([{ path: "", message: unreadable }]));
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (raw.length === 0 || raw.toString("utf8").trim() === "") {
    req.body = {};
    return next();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    return next(validationError([{ path: "", message: "Malformed JSON body" }]));
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return next(validationError([{ path: "", message: "Body must be a JSON object" }]));
  }
  const problem = inspectBody(parsed);
  if (problem) return next(validationError([problem]));
  req.body = parsed;
  next();
};

export const MAX_BODY_DEPTH = 32;

/**
 * Walks the body once, iteratively (a deeply nested body must not blow the
 * stack): refuses nesting past MAX_BODY_DEPTH, and keys or strings holding
 * U+0000, which Postgres text and jsonb cannot store.
 */
function inspectBody(body: unknown): { path: string; message: string } | null {
  const stack: { value: unknown; path: string[] }[] = [{ value: body, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === "string") {
      if (value.includes("\u0000")) return { path: path.join("."), message: "must not contain NUL (\\u0000) characters" };
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (path.length >= MAX_BODY_DEPTH) return { path: path.join("."), message: `nesting deeper than ${MAX_BODY_DEPTH} levels` };
    for (const [k, v] of Object.entries(value)) {
      if (k.includes("\u0000")) return { path: [...path, k].join("."), message: "must not contain NUL (\\u0000) characters" };
      stack.push({ value: v, path: [...path, k] });
    }
  }
  return null;
}

export const user = (res: Parameters<RequestHandler>[1]) => {
  const u = locals(res).user;
  if (!u) throw new AppError("Unauthorized", { message: "Missing API key" });
  return u;
};
