import { parseTierLimits, type CommonEnv, type Tier, type TierLimits, type WorkerEnv } from "@simbatch/config";
import { redisKeys, systemClock, type Clock } from "@simbatch/contracts";
import { createDb, type Db } from "@simbatch/db";
import { createCatalog, createEngine, type SimulationEngine } from "@simbatch/engine";
import { createLogger, type Logger } from "@simbatch/logger";
import {
  adjustLiveApiCalls,
  createRedis,
  JobMetrics,
  ProgressChannel,
  QueueSet,
  SimulationQueue,
  StopSignals,
  WebhookQueue,
  WorkerRegistry,
  waitReady,
  type Redis,
  type RedisNode,
  type RedisTarget,
} from "@simbatch/queue";
import { WEBHOOK_MAX_ATTEMPTS } from "@simbatch/core";
import type { CoreDeps } from "@simbatch/core";

export interface WiringOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Seed nodes of a Redis Cluster (REDIS_CLUSTER_NODES); set → every connection is a Cluster client. */
  redisClusterNodes?: readonly RedisNode[] | null;
  /** As the keys use it: on a Cluster, hash-tagged (config's effectiveRedisPrefix; parseEnv applies it). */
  redisPrefix: string;
  testTemplates: boolean;
  limits: Record<Tier, TierLimits>;
  logger: Logger;
  /** `producer` fails fast when Redis is down (API); `consumer` waits through reconnects. */
  redisRole: "producer" | "consumer";
  clock?: Clock;
  dbPoolSize?: number;
  /** DATABASE_PREPARED_STATEMENTS; default true. */
  dbPreparedStatements?: boolean;
  /** DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS; default 10 s. */
  dbIdleInTransactionTimeoutMs?: number;
  /** WEBHOOK_RETRY_BASE_MS; default 5 s. */
  webhookRetryBaseMs?: number;
}

export interface Wired extends CoreDeps {
  redis: Redis;
  /** Where `redis` points: `createRedis(redisTarget, role)` makes another connection (a subscriber, a blocking reader). */
  redisTarget: RedisTarget;
  redisPrefix: string;
  /** Every BullMQ queue of the service (allQueueNames), opened on first use: the API's queue dashboard reads them. */
  queues: QueueSet;
  close(): Promise<void>;
}

/**
 * The one composition root: builds the clients every role shares (the apps, the
 * admin CLI and the test stack call it, never `new` the clients themselves).
 */
export function wireCore(opts: WiringOptions): Wired {
  const db = createDb({
    url: opts.databaseUrl,
    poolSize: opts.dbPoolSize,
    preparedStatements: opts.dbPreparedStatements,
    idleInTransactionTimeoutMs: opts.dbIdleInTransactionTimeoutMs,
  });
  const redisTarget: RedisTarget = { url: opts.redisUrl, clusterNodes: opts.redisClusterNodes ?? null };
  const redis = createRedis(redisTarget, opts.redisRole);
  const keys = redisKeys(opts.redisPrefix);
  const queue = new SimulationQueue(redis, opts.redisPrefix);
  const webhooks = new WebhookQueue(redis, opts.redisPrefix, { attempts: WEBHOOK_MAX_ATTEMPTS, backoffMs: opts.webhookRetryBaseMs ?? 5_000 });
  const queues = new QueueSet(redis, opts.redisPrefix, [queue.queue, webhooks.queue]);
  return {
    db,
    redis,
    redisTarget,
    redisPrefix: opts.redisPrefix,
    queue,
    queues,
    signals: new StopSignals(redis, opts.redisPrefix),
    registry: new WorkerRegistry(redis, keys.workers),
    jobMetrics: new JobMetrics(redis, keys.jobMetrics),
    catalog: createCatalog({ testTemplates: opts.testTemplates }),
    limits: opts.limits,
    clock: opts.clock ?? systemClock,
    logger: opts.logger,
    progress: new ProgressChannel(redis, keys.progress),
    webhooks,
    async close() {
      await queues.close();
      await queue.close().catch(() => undefined);
      await webhooks.close().catch(() => undefined);
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
    dbPreparedStatements: env.DATABASE_PREPARED_STATEMENTS,
    dbIdleInTransactionTimeoutMs: env.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    redisUrl: env.REDIS_URL,
    redisClusterNodes: env.REDIS_CLUSTER_NODES,
    redisPrefix: env.REDIS_PREFIX,
    testTemplates: env.SIMBATCH_TEST_TEMPLATES,
    limits,
    logger,
    redisRole,
    webhookRetryBaseMs: env.WEBHOOK_RETRY_BASE_MS,
  });
}

/** What the worker app runs on: its Postgres pool (sized to its concurrency), Redis, engine and logger. */
export interface WiredWorker {
  db: Db;
  redis: Redis;
  redisTarget: RedisTarget;
  engine: SimulationEngine;
  logger: Logger;
  close(): Promise<void>;
}

export function wireWorker(env: WorkerEnv): WiredWorker {
  const logger = createLogger({ service: "worker", level: env.LOG_LEVEL });
  const db = createDb({
    url: env.DATABASE_URL,
    poolSize: Math.min(20, env.WORKER_CONCURRENCY + 2),
    preparedStatements: env.DATABASE_PREPARED_STATEMENTS,
    idleInTransactionTimeoutMs: env.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
  });
  const redisTarget = redisTargetOf(env);
  const redis = createRedis(redisTarget, "consumer");
  const engine = createEngine({
    kind: env.ENGINE,
    model: env.ENGINE_MODEL,
    prices: env.MODEL_PRICES_JSON,
    openai:
      env.ENGINE === "openai"
        ? {
            baseUrl: env.OPENAI_BASE_URL,
            apiKey: env.OPENAI_API_KEY ?? "",
            model: env.OPENAI_MODEL,
            // The provider's own error text goes to the worker's (redacting) log, never to the job.
            onProviderError: (e) => logger.warn("LLM provider error", { status: e.status, detail: e.detail }),
          }
        : undefined,
  });
  return {
    db,
    redis,
    redisTarget,
    engine,
    logger,
    async close() {
      await db.$disconnect().catch(() => undefined);
      redis.disconnect();
    },
  };
}

/** Where a role's Redis is, from its env (REDIS_URL, REDIS_CLUSTER_NODES). */
export function redisTargetOf(env: CommonEnv): RedisTarget {
  return { url: env.REDIS_URL, clusterNodes: env.REDIS_CLUSTER_NODES ?? null };
}

export interface WiredAdminCli {
  db: Db;
  /** Moves a user's live API-call count by an adjustment (Redis is reached only by commands that call this). */
  adjustLiveApiCalls(userId: string, period: string, delta: number): Promise<void>;
  close(): Promise<void>;
}

/** The admin CLI's clients: a small Postgres pool (one command, then exit) and, when needed, Redis. */
export function wireAdminCli(env: CommonEnv): WiredAdminCli {
  const db = createDb({
    url: env.DATABASE_URL,
    poolSize: 2,
    preparedStatements: env.DATABASE_PREPARED_STATEMENTS,
    idleInTransactionTimeoutMs: env.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
  });
  let redis: Redis | null = null;
  return {
    db,
    async adjustLiveApiCalls(userId, period, delta) {
      redis ??= createRedis(redisTargetOf(env), "producer");
      await waitReady(redis);
      await adjustLiveApiCalls(redis, env.REDIS_PREFIX, userId, period, delta);
    },
    async close() {
      redis?.disconnect();
      await db.$disconnect();
    },
  };
}
