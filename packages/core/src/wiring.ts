import { parseTierLimits, type CommonEnv, type Tier, type TierLimits } from "@simbatch/config";
import { redisKeys, systemClock, type Clock } from "@simbatch/contracts";
import { createDb } from "@simbatch/db";
import { createCatalog } from "@simbatch/engine";
import { createLogger, type Logger } from "@simbatch/logger";
import { createRedis, SimulationQueue, StopSignals, WorkerRegistry, type Redis } from "@simbatch/queue";
import type { CoreDeps } from "./deps.ts";

export interface WiringOptions {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  testTemplates: boolean;
  limits: Record<Tier, TierLimits>;
  logger: Logger;
  /** `producer` fails fast when Redis is down (API); `consumer` waits through reconnects. */
  redisRole: "producer" | "consumer";
  clock?: Clock;
  dbPoolSize?: number;
}

export interface Wired extends CoreDeps {
  redis: Redis;
  redisPrefix: string;
  close(): Promise<void>;
}

/** Builds the clients every role shares; each app's composition root calls it once. */
export function wireCore(opts: WiringOptions): Wired {
  const db = createDb({ url: opts.databaseUrl, poolSize: opts.dbPoolSize });
  const redis = createRedis(opts.redisUrl, opts.redisRole);
  const keys = redisKeys(opts.redisPrefix);
  const queue = new SimulationQueue(redis, opts.redisPrefix);
  return {
    db,
    redis,
    redisPrefix: opts.redisPrefix,
    queue,
    signals: new StopSignals(redis, opts.redisPrefix),
    registry: new WorkerRegistry(redis, keys.workers),
    catalog: createCatalog({ testTemplates: opts.testTemplates }),
    limits: opts.limits,
    clock: opts.clock ?? systemClock,
    logger: opts.logger,
    async close() {
      await queue.close().catch(() => undefined);
      await db.$disconnect().catch(() => undefined);
      redis.disconnect();
    },
  };
}

/**
 * A role's core clients from its parsed env and the raw environment its
 * composition root read (tier limit overrides are validated here, at boot), with
 * a logger named after the role.
 */
export function wireFromEnv(env: CommonEnv, rawEnv: Record<string, string | undefined>, role: string, redisRole: WiringOptions["redisRole"]): Wired {
  const limits = parseTierLimits(rawEnv);
  const logger = createLogger({ service: role, level: env.LOG_LEVEL });
  return wireCore({
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    redisPrefix: env.REDIS_PREFIX,
    testTemplates: env.SIMBATCH_TEST_TEMPLATES,
    limits,
    logger,
    redisRole,
  });
}
