import { loadEnvOrExit, WorkerEnvSchemaChecked } from "@simbatch/config";
import { createDb } from "@simbatch/db";
import { createEngine } from "@simbatch/engine";
import { createLogger } from "@simbatch/logger";
import { createRedis } from "@simbatch/queue";
import { onShutdown, runRole } from "@simbatch/runtime";
import { WorkerRuntime } from "./worker-runtime.ts";

async function main(): Promise<void> {
  const env = loadEnvOrExit(WorkerEnvSchemaChecked, "worker");
  const logger = createLogger({ service: "worker", level: env.LOG_LEVEL });
  const db = createDb({ url: env.DATABASE_URL, poolSize: Math.min(20, env.WORKER_CONCURRENCY + 2) });
  const redis = createRedis(env.REDIS_URL, "consumer");
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
  const runtime = new WorkerRuntime({
    db,
    redis,
    redisPrefix: env.REDIS_PREFIX,
    engine,
    logger,
    concurrency: env.WORKER_CONCURRENCY,
    stepDelayMs: env.SIM_STEP_MS,
    lockDurationMs: env.JOB_LOCK_MS,
    maxJobAttempts: env.MAX_JOB_ATTEMPTS,
  });
  await runtime.start();

  onShutdown(logger, env.SHUTDOWN_TIMEOUT_MS, async () => {
    await runtime.stop();
    await db.$disconnect();
    redis.disconnect();
  });
}

runRole("worker", main);
