import { loadEnvOrExit, WorkerEnvSchemaChecked } from "@simbatch/config";
import { createDb } from "@simbatch/db";
import { createEngine } from "@simbatch/engine";
import { createLogger } from "@simbatch/logger";
import { createRedis } from "@simbatch/queue";
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
    openai: env.ENGINE === "openai" ? { baseUrl: env.OPENAI_BASE_URL, apiKey: env.OPENAI_API_KEY ?? "", model: env.OPENAI_MODEL } : undefined,
  });
  const runtime = new WorkerRuntime({
    db, redis, redisPrefix: env.REDIS_PREFIX, engine, logger,
    concurrency: env.WORKER_CONCURRENCY, stepDelayMs: env.SIM_STEP_MS, lockDurationMs: env.JOB_LOCK_MS,
  });
  await runtime.start();

  let exiting = false;
  const shutdown = async (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info("shutting down", { signal });
    const force = setTimeout(() => {
      logger.error("shutdown timed out; exiting");
      process.exit(1);
    }, env.SHUTDOWN_TIMEOUT_MS).unref();
    await runtime.stop();
    await db.$disconnect();
    redis.disconnect();
    clearTimeout(force);
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ level: "error", message: "worker failed to start", error: String(err) })}\n`);
  process.exit(1);
});
