import { ApiEnvSchema, loadEnvOrExit, parseTierLimits } from "@simbatch/config";
import { wireCore } from "@simbatch/core";
import { createLogger } from "@simbatch/logger";
import { createServer } from "node:http";
import { createApp } from "./app.ts";

async function main(): Promise<void> {
  const env = loadEnvOrExit(ApiEnvSchema, "api");
  const limits = parseTierLimits(process.env);
  const logger = createLogger({ service: "api", level: env.LOG_LEVEL });
  const core = wireCore({
    databaseUrl: env.DATABASE_URL, redisUrl: env.REDIS_URL, redisPrefix: env.REDIS_PREFIX,
    testTemplates: env.SIMBATCH_TEST_TEMPLATES, limits, logger, redisRole: "producer",
  });
  const app = createApp({ ...core, config: { adminToken: env.ADMIN_TOKEN, maxBodyBytes: env.MAX_BODY_BYTES }, gates: [] });
  const server = createServer(app);
  server.listen(env.PORT, () => logger.info("api listening", { port: env.PORT, admin_api: env.ADMIN_TOKEN ? "on" : "off" }));

  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info("shutting down", { signal });
    setTimeout(() => process.exit(1), env.SHUTDOWN_TIMEOUT_MS).unref();
    server.close(() => void core.close().then(() => process.exit(0)));
    server.closeIdleConnections();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ level: "error", message: "api failed to start", error: String(err) })}\n`);
  process.exit(1);
});
