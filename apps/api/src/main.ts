import { ApiEnvSchemaChecked, loadEnvOrExit } from "@simbatch/config";
import { waitReady } from "@simbatch/queue";
import { onShutdown, runRole, wireFromEnv } from "@simbatch/runtime";
import { wireApi } from "./wiring.ts";
import { createHttpServer } from "./http/server.ts";

async function main(): Promise<void> {
  const env = loadEnvOrExit(ApiEnvSchemaChecked, "api");
  const core = wireFromEnv(env, process.env, "api", "producer");
  const { logger } = core;
  // The rate-limit store loads its Lua scripts at construction; the producer connection refuses commands until ready.
  await waitReady(core.redis, 10_000);
  const { app, flusher, live } = wireApi(core, {
    config: {
      adminToken: env.ADMIN_TOKEN,
      maxBodyBytes: env.MAX_BODY_BYTES,
      adminAuth: { maxFailures: env.ADMIN_AUTH_MAX_FAILURES, windowMs: env.ADMIN_AUTH_WINDOW_MS },
      webhookAllowPrivate: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      live: { keepAliveMs: env.SSE_KEEPALIVE_MS, maxStreamsPerUser: env.SSE_MAX_STREAMS_PER_USER },
    },
    flushIntervalMs: env.USAGE_FLUSH_INTERVAL_MS,
    rateLimitEnabled: env.RATE_LIMIT_ENABLED,
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
    // Live streams end first (clients reconnect elsewhere), else they would hold the server open.
    live.shutdown();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
    // Pending API-call counts go to Postgres before the clients close.
    await flusher.stop();
    await core.close();
  });
}

runRole("api", main);
