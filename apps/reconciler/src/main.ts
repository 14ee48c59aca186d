import { loadEnvOrExit, parseTierLimits, ReconcilerEnvSchema } from "@simbatch/config";
import { wireCore } from "@simbatch/core";
import { createLogger } from "@simbatch/logger";
import { createRedis } from "@simbatch/queue";
import { onShutdown, runRole } from "@simbatch/runtime";
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

  onShutdown(logger, env.SHUTDOWN_TIMEOUT_MS, async () => {
    await runtime.stop();
    await deps.close();
  });
}

runRole("reconciler", main);
