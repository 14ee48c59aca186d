import type { CoreDeps } from "@simbatch/core";
import type { ApiCallCounter, Redis, RedisTarget } from "@simbatch/queue";
import type { RequestHandler } from "express";

export interface ApiConfig {
  /** Admin API is absent (404) when unset. */
  adminToken: string | undefined;
  /** Largest accepted body; larger ones get 413 before auth. Default 2 MiB. */
  maxBodyBytes: number;
  /** Throttle on failed admin authentications per client IP (ADMIN_AUTH_*). Defaults: 10 per 15 minutes. */
  adminAuth?: { maxFailures?: number; windowMs?: number };
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: http:// and private targets accepted for webhook_url. */
  webhookAllowPrivate?: boolean;
  /** Live-progress streams (SSE_*). */
  live?: { keepAliveMs?: number; maxStreamsPerUser?: number; minIntervalMs?: number; refreshMs?: number };
}

export interface ApiDeps extends CoreDeps {
  redis: Redis;
  /** Where `redis` points (makes the live-progress subscriber); absent: a duplicate of `redis`. */
  redisTarget?: RedisTarget;
  /** Prefix of every Redis key and queue (REDIS_PREFIX). */
  redisPrefix: string;
  config: ApiConfig;
  /** Live API-call counts (Redis): the quota gate on every authenticated route but the usage routes. */
  apiCalls: ApiCallCounter;
  /**
   * Run on every authenticated route after auth and the API-call quota (the
   * per-tier rate limit, see buildGates). Each sees `res.locals.user`.
   */
  gates: RequestHandler[];
}
