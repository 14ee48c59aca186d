import { loadEnvOrExit, parseTierLimits, ReconcilerEnvSchema } from "@simbatch/config";
import { wireCore } from "@simbatch/core";
import { createLogger } from "@simbatch/logger";
import { createRedis } from "@simbatch/queue";
import { ReconcilerRuntime } from "./reconciler-runtime.ts";

async function main(): Promise<void> {
  const env = loadEnvOrExit(ReconcilerEnvSchema, "reconciler");
  const limits = parseTierLimits(process.env);
  const logger = createLogger({ service: "reconciler", level: env.LOG_LEVEL });
  const deps = wireCore({
    databaseUrl: env.DATABASE_URL, redisUrl: env.REDIS_URL, redisPrefix: env.REDIS_PREFIX,
    testTemplates: env.SIMBATCH_TEST_TEMPLATES, limits, logger, redisRole: "consumer",
  });
  const runtime = new ReconcilerRuntime({
    deps, streamRedis: createRedis(env.REDIS_URL, "consumer"), redisPrefix: env.REDIS_PREFIX, sweepIntervalMs: env.SWEEP_INTERVAL_MS,
  });
  await runtime.start();
  await runtime.sweepOnce().catch((err) => logger.warn("initial sweep failed", { error: String(err) }));

  let exiting = false;
  const shutdown = async (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info("shutting down", { signal });
    setTimeout(() => process.exit(1), env.SHUTDOWN_TIMEOUT_MS).unref();
    await runtime.stop();
    await deps.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ level: "error", message: "reconciler failed to start", error: String(err) })}\n`);
  process.exit(1);
});
