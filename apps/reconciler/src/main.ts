import { loadEnvOrExit, ReconcilerEnvSchema } from "@simbatch/config";
import { createRedis } from "@simbatch/queue";
import { onShutdown, runRole, wireFromEnv } from "@simbatch/runtime";
import { ReconcilerRuntime } from "./reconciler-runtime.ts";

async function main(): Promise<void> {
  const env = loadEnvOrExit(ReconcilerEnvSchema, "reconciler");
  const deps = wireFromEnv(env, process.env, "reconciler", "consumer");
  const { logger } = deps;
  const runtime = new ReconcilerRuntime({
    deps,
    streamRedis: createRedis(deps.redisTarget, "consumer"),
    redisPrefix: deps.redisPrefix,
    sweepIntervalMs: env.SWEEP_INTERVAL_MS,
    repairAfterMs: env.REPAIR_AFTER_MS,
    staleEventMs: env.EVENT_CLAIM_IDLE_MS,
    webhooks: {
      connection: createRedis(deps.redisTarget, "consumer"),
      allowPrivate: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      concurrency: env.WEBHOOK_CONCURRENCY,
    },
  });
  await runtime.start();
  await runtime.sweepOnce().catch((err) => logger.warn("initial sweep failed", { error: String(err) }));

  onShutdown(logger, env.SHUTDOWN_TIMEOUT_MS, async () => {
    await runtime.stop();
    await deps.close();
  });
}

runRole("reconciler", main);
