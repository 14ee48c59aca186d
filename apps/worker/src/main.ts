import { loadEnvOrExit, WorkerEnvSchemaChecked } from "@simbatch/config";
import { onShutdown, runRole, wireWorker } from "@simbatch/runtime";
import { WorkerRuntime } from "./worker-runtime.ts";

async function main(): Promise<void> {
  const env = loadEnvOrExit(WorkerEnvSchemaChecked, "worker");
  const { db, redis, engine, logger, close } = wireWorker(env);
  const runtime = new WorkerRuntime({
    db,
    redis,
    redisPrefix: env.REDIS_PREFIX, // as the keys use it (hash-tagged on a Cluster: parseEnv)
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
    await close();
  });
}

runRole("worker", main);
