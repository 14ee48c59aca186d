import type { ApiCallFlusher } from "@simbatch/queue";
import type { Wired } from "@simbatch/runtime";
import type { Express } from "express";
import { createApp } from "./app.ts";
import type { ApiConfig, ApiDeps } from "./deps.ts";
import { buildGates, startUsageCounting } from "./http/gates.ts";
import { liveHub, type LiveHub } from "./live/hub.ts";

export interface ApiWiringOptions {
  config: ApiConfig;
  /** As USAGE_FLUSH_INTERVAL_MS. */
  flushIntervalMs: number;
  /** As RATE_LIMIT_ENABLED. */
  rateLimitEnabled: boolean;
}

/**
 * The API's composition on top of the core clients: API-call counting (and its
 * flusher), the per-tier gates, and the Express app. main.ts and the test stack
 * both build the API through this, so they cannot drift apart.
 */
export function wireApi(core: Wired, opts: ApiWiringOptions): { app: Express; deps: ApiDeps; flusher: ApiCallFlusher; live: LiveHub } {
  const { counter, flusher } = startUsageCounting({
    db: core.db,
    redis: core.redis,
    redisPrefix: core.redisPrefix,
    logger: core.logger,
    flushIntervalMs: opts.flushIntervalMs,
  });
  const gates = buildGates({ limits: core.limits, redis: core.redis, redisPrefix: core.redisPrefix, rateLimitEnabled: opts.rateLimitEnabled });
  const deps: ApiDeps = { ...core, config: opts.config, apiCalls: counter, gates };
  const live = liveHub(deps);
  return { app: createApp(deps, live), deps, flusher, live };
}
