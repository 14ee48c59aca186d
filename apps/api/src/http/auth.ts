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
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    return next(validationError([{ path: "", message: "Request body is not valid UTF-8" }]));
  }
  if (text.trim() === "") {
    req.body = {};
    return next();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
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

/** Strict: a body that is not UTF-8 is refused, not stored with U+FFFD in place of its bytes. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

export const MAX_BODY_DEPTH = 32;

/** A lone UTF-16 surrogate (a JSON "\ud800" escape with no pair): no UTF-8 text, so Postgres refuses it. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why a key or string value cannot be stored, or null when it can. */
function unstorable(s: string): string | null {
  if (s.includes("\u0000")) return "must not contain NUL (\\u0000) characters";
  if (LONE_SURROGATE.test(s)) return "must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff escapes without their pair)";
  return null;
}

/**
 * Walks the body once, iteratively (a deeply nested body must not blow the
 * stack): refuses nesting past MAX_BODY_DEPTH; numbers too large for a double;
 * keys or strings holding U+0000 or an unpaired surrogate, which Postgres text
 * and json cannot store; and the key `__proto__`, which a JavaScript object
 * cannot hold as data (it would be dropped without a word).
 */
function inspectBody(body: unknown): { path: string; message: string } | null {
  const stack: { value: unknown; path: string[] }[] = [{ value: body, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === "string") {
      const problem = unstorable(value);
      if (problem) return { path: path.join("."), message: problem };
      continue;
    }
    // 1e400 parses as Infinity, which JSON can only write back as null: refused, not echoed as null.
    if (typeof value === "number" && !Number.isFinite(value)) return { path: path.join("."), message: "number out of range (beyond a 64-bit float)" };
    if (value === null || typeof value !== "object") continue;
    if (path.length >= MAX_BODY_DEPTH) return { path: path.join("."), message: `nesting deeper than ${MAX_BODY_DEPTH} levels` };
    for (const [k, v] of Object.entries(value)) {
      const problem = k === "__proto__" ? "__proto__ is a reserved key" : unstorable(k);
      if (problem) return { path: [...path, k].join("."), message: problem };
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
