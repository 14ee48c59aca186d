import type { Tier, TierLimits } from "@simbatch/config";
import { periodOf, secondsToNextPeriod, type Clock } from "@simbatch/contracts";
import { apiCallsBase, persistApiCalls } from "@simbatch/core";
import type { Db } from "@simbatch/db";
import { AppError } from "@simbatch/errors";
import type { Logger } from "@simbatch/logger";
import { ApiCallCounter, ApiCallFlusher, sendCommand, type Redis } from "@simbatch/queue";
import type { Request, RequestHandler } from "express";
import { rateLimit, type AugmentedRequest } from "express-rate-limit";
import { RedisStore, type RedisReply } from "rate-limit-redis";
import { user } from "./auth.ts";

export interface UsageCountingOptions {
  db: Db;
  redis: Redis;
  redisPrefix: string;
  logger: Logger;
  /** How often pending API-call counts are written to Postgres. Default 5000 ms. */
  flushIntervalMs?: number;
}

/** The API-call counter and its periodic flusher (started here; stop it on shutdown). */
export function startUsageCounting(opts: UsageCountingOptions): { counter: ApiCallCounter; flusher: ApiCallFlusher } {
  const counter = new ApiCallCounter({
    redis: opts.redis,
    prefix: opts.redisPrefix,
    loadBase: (userId, period) => apiCallsBase(opts.db, userId, period),
    persist: (rows) => persistApiCalls(opts.db, rows),
  });
  const flusher = new ApiCallFlusher(counter, opts.flushIntervalMs ?? 5_000, (err) =>
    opts.logger.warn("api-call flush failed; counts kept in Redis for the next one", { error: String(err) }),
  );
  flusher.start();
  return { counter, flusher };
}

/**
 * Checks and counts in one atomic step; a refused call is not counted. With
 * `refuse: false` (the usage routes) the call is counted but never refused, so a
 * client over its quota can still see why.
 */
export function apiCallQuota(
  counter: ApiCallCounter,
  limits: Record<Tier, TierLimits>,
  clock: Clock,
  opts: { refuse: boolean } = { refuse: true },
): RequestHandler {
  return (_req, res, next) => {
    const u = user(res);
    const now = clock.now();
    const limit = limits[u.tier].apiCalls;
    counter
      .consume(u.id, periodOf(now), opts.refuse ? limit : -1)
      .then((r) => {
        if (r.allowed) return next();
        next(
          new AppError("QuotaExceeded", {
            message: `API call quota exceeded: ${r.used} of ${limit} calls used this period`,
            fields: { api_calls_used: r.used, api_calls_limit: limit },
            retryAfter: secondsToNextPeriod(now),
          }),
        );
      })
      .catch(next);
  };
}

export interface RateLimitOptions {
  redis: Redis;
  redisPrefix: string;
  limits: Record<Tier, TierLimits>;
}

/**
 * Fixed one-minute windows per user in Redis (rate-limit-redis), so the limit
 * holds across API replicas. Keyed by user id, never by IP: every route here is
 * authenticated.
 */
export function perUserRateLimit(opts: RateLimitOptions): RequestHandler {
  const store = new RedisStore({
    prefix: `${opts.redisPrefix}:rl:`,
    // Through the queue package: on a Redis Cluster its scripts must be loaded on every master.
    sendCommand: (command: string, ...args: string[]) => sendCommand(opts.redis, command, ...args) as Promise<RedisReply>,
  });
  return rateLimit({
    windowMs: 60_000,
    limit: (_req, res) => opts.limits[user(res).tier].ratePerMinute,
    keyGenerator: (_req, res) => user(res).id,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    store,
    // The key is the user id, so the IP-related checks do not apply.
    validate: { trustProxy: false, xForwardedForHeader: false, ip: false },
    handler: (req, res, next) => {
      const u = user(res);
      const info = (req as Request as AugmentedRequest).rateLimit;
      const reset = info?.resetTime?.getTime() ?? Date.now() + 60_000;
      const limit = opts.limits[u.tier].ratePerMinute;
      next(
        new AppError("RateLimitExceeded", {
          message: `Rate limit exceeded: the ${u.tier} tier allows ${limit} requests per minute`,
          fields: { tier: u.tier, limit },
          retryAfter: Math.max(1, Math.ceil((reset - Date.now()) / 1000)),
        }),
      );
    },
  });
}

export interface GateOptions extends RateLimitOptions {
  rateLimitEnabled: boolean;
}

/** `ApiDeps.gates`, built the same way by main.ts and the test stack: the rate limit unless switched off. */
export function buildGates(opts: GateOptions): RequestHandler[] {
  return opts.rateLimitEnabled ? [perUserRateLimit(opts)] : [];
}
