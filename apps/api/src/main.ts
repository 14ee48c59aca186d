import { ApiEnvSchemaChecked, loadEnvOrExit } from "@simbatch/config";
import { wireFromEnv } from "@simbatch/core";
import { waitReady } from "@simbatch/queue";
import { onShutdown, runRole } from "@simbatch/runtime";
import { createApp } from "./app.ts";
import { buildGates, startUsageCounting } from "./http/gates.ts";
import { createHttpServer } from "./http/server.ts";

async function main(): Promise<void> {
  const env = loadEnvOrExit(ApiEnvSchemaChecked, "api");
  const core = wireFromEnv(env, process.env, "api", "producer");
  const { logger, limits } = core;
  // The rate-limit store loads its Lua scripts at construction; the producer connection refuses commands until ready.
  await waitReady(core.redis, 10_000);
  const { counter, flusher } = startUsageCounting({
    db: core.db,
    redis: core.redis,
    redisPrefix: env.REDIS_PREFIX,
    logger,
    flushIntervalMs: env.USAGE_FLUSH_INTERVAL_MS,
  });
  const gates = buildGates({
    limits,
    redis: core.redis,
    redisPrefix: env.REDIS_PREFIX,
    rateLimitEnabled: env.RATE_LIMIT_ENABLED,
  });
  const app = createApp({
    ...core,
    config: {
      adminToken: env.ADMIN_TOKEN,
      maxBodyBytes: env.MAX_BODY_BYTES,
      adminAuth: { maxFailures: env.ADMIN_AUTH_MAX_FAILURES, windowMs: env.ADMIN_AUTH_WINDOW_MS },
    },
    apiCalls: counter,
    gates,
  });
  const server = createHttpServer(app, {
    headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS,
  });
  server.listen(env.PORT, () =>
    logger.info("api listening", { port: env.PORT, admin_api: env.ADMIN_TOKEN ? "on" : "off", rate_limit: env.RATE_LIMIT_ENABLED ? "on" : "off" }),
  );

  onShutdown(logger, env.SHUTDOWN_TIMEOUT_MS, async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
    // Pending API-call counts go to Postgres before the clients close.
    await flusher.stop();
    await core.close();
  });
}

runRole("api", main);
