import { MIN_ADMIN_TOKEN_LENGTH } from "@simbatch/config";
import { AppError } from "@simbatch/errors";
import type { Redis } from "@simbatch/queue";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Request, RequestHandler } from "express";
import { ipKeyGenerator } from "express-rate-limit";

export interface AdminAuthOptions {
  /** ADMIN_TOKEN (at least 32 characters; checked at boot). */
  token: string;
  redis: Redis;
  redisPrefix: string;
  /** Failed authentications per client IP per window before every admin request from it gets 429. Default 10. */
  maxFailures?: number;
  /** Length of that window. Default 15 minutes. */
  windowMs?: number;
  /**
   * Routes a browser opens (the dashboards): HTTP Basic is accepted too, with
   * the token as password and any user name; a 401 asks for it with
   * `WWW-Authenticate`, and a request that presents no credentials at all is not
   * counted as a failure, since a browser always sends its first one bare.
   * Default false: Bearer only, as the admin API's contract says.
   */
  browser?: boolean;
}

export const ADMIN_REALM = "simbatch admin";

export const DEFAULT_ADMIN_AUTH_MAX_FAILURES = 10;
export const DEFAULT_ADMIN_AUTH_WINDOW_MS = 15 * 60_000;

/**
 * Compares a presented token with the expected one in time that depends on
 * neither their contents nor their lengths: both go through HMAC-SHA256 under a
 * per-process random key, and the fixed-size digests are compared with
 * timingSafeEqual.
 */
export function tokenComparer(expected: string): (given: string) => boolean {
  const key = randomBytes(32);
  const digest = (s: string) => createHmac("sha256", key).update(s, "utf8").digest();
  const want = digest(expected);
  return (given) => timingSafeEqual(digest(given), want);
}

/**
 * The admin token a request presents: `Authorization: Bearer <token>`, or, when
 * `basic` is allowed, `Authorization: Basic base64(<any user>:<token>)` (the
 * password is everything after the first colon, RFC 7617). Empty when none.
 */
export function presentedToken(authorization: string | undefined, basic: boolean): string {
  const header = authorization ?? "";
  const bearer = /^Bearer (.+)$/.exec(header)?.[1];
  if (bearer !== undefined) return bearer;
  if (!basic) return "";
  const encoded = /^basic +([A-Za-z0-9+/]+=*) *$/i.exec(header)?.[1];
  if (encoded === undefined) return "";
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? "" : decoded.slice(colon + 1);
}

const clientKey = (req: Request) => ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? "unknown");

const MISSING_BEARER = "Missing admin token (Authorization: Bearer <ADMIN_TOKEN>)";
const MISSING_BROWSER = "Missing admin credentials (HTTP Basic with the admin token as password, or Authorization: Bearer <ADMIN_TOKEN>)";

/**
 * Admin bearer-token check with a throttle on failures. Each 401 counts one
 * failure against the client's IP (a Redis counter that expires with its window,
 * shared by every API replica); an IP at the limit gets 429 `RateLimitExceeded`
 * with Retry-After for every admin request until the window ends, before its
 * token is even looked at, so a throttled client learns nothing from guessing.
 */
export function requireAdmin(opts: AdminAuthOptions): RequestHandler {
  // main.ts refuses a short ADMIN_TOKEN at boot; this keeps every other wiring (tests, embedders) to the same rule.
  if (opts.token.length < MIN_ADMIN_TOKEN_LENGTH) throw new Error(`ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  const matches = tokenComparer(opts.token);
  const maxFailures = opts.maxFailures ?? DEFAULT_ADMIN_AUTH_MAX_FAILURES;
  const windowMs = opts.windowMs ?? DEFAULT_ADMIN_AUTH_WINDOW_MS;
  const browser = opts.browser ?? false;
  const keyOf = (req: Request) => `${opts.redisPrefix}:admin-auth-failures:${clientKey(req)}`;

  const refuseIfThrottled = async (key: string): Promise<AppError | null> => {
    const [count, ttl] = await Promise.all([opts.redis.get(key), opts.redis.pttl(key)]);
    if (Number(count ?? 0) < maxFailures) return null;
    return new AppError("RateLimitExceeded", {
      message: `Too many failed admin authentications from this address; try again in ${Math.max(1, Math.ceil((ttl > 0 ? ttl : windowMs) / 1000))} s`,
      fields: { tier: null, limit: maxFailures },
      retryAfter: Math.max(1, Math.ceil((ttl > 0 ? ttl : windowMs) / 1000)),
    });
  };

  const countFailure = async (key: string): Promise<void> => {
    // The window starts at the first failure; the key always has an expiry.
    await opts.redis.multi().set(key, "0", "PX", windowMs, "NX").incr(key).exec();
  };

  return (req, _res, next) => {
    const key = keyOf(req);
    (async () => {
      const throttled = await refuseIfThrottled(key);
      if (throttled) return next(throttled);
      const given = presentedToken(req.header("authorization"), browser);
      if (given !== "" && matches(given)) return next();
      const bare = req.header("authorization") === undefined;
      if (!(browser && bare)) await countFailure(key);
      next(
        new AppError("Unauthorized", {
          message: given ? "Invalid admin token" : browser ? MISSING_BROWSER : MISSING_BEARER,
          headers: browser ? { "WWW-Authenticate": `Basic realm="${ADMIN_REALM}", charset="UTF-8"` } : {},
        }),
      );
    })().catch(next);
  };
}
