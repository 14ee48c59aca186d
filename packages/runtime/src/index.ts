import type { Logger } from "@simbatch/logger";

/**
 * Process lifecycle shared by every role: a failed start prints one JSON line
 * and exits 1; SIGTERM/SIGINT run `stop` once and exit 0, or exit 1 when it
 * takes longer than `timeoutMs`.
 */
export function runRole(role: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${JSON.stringify({ level: "error", service: role, message: `${role} failed to start`, error: String(err) })}\n`);
    process.exit(1);
  });
}

export function onShutdown(logger: Logger, timeoutMs: number, stop: () => Promise<void>): void {
  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info("shutting down", { signal, timeout_ms: timeoutMs });
    setTimeout(() => {
      logger.error("shutdown timed out; exiting");
      process.exit(1);
    }, timeoutMs).unref();
    stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error("shutdown failed", { error: String(err) });
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

export * from "./wiring.ts";
