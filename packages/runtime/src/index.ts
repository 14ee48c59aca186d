import { rmSync, writeFileSync } from "node:fs";
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

/** How often a role rewrites its HEALTH_FILE; scripts/healthcheck.mjs allows 30 s of silence. */
export const HEALTH_FILE_INTERVAL_MS = 5_000;

/**
 * Keeps `file` fresh from this process' event loop (written at once, then every
 * `intervalMs`): a liveness signal for roles without an HTTP port. It says the
 * process runs and its event loop turns, not that Postgres or Redis answer (a
 * restart would not bring those back). `stop` removes the file. No file: no-op.
 */
export function keepAliveFile(file: string | undefined, intervalMs = HEALTH_FILE_INTERVAL_MS): { stop(): void } {
  if (!file) return { stop: () => undefined };
  const touch = () => {
    try {
      writeFileSync(file, `${new Date().toISOString()}\n`);
    } catch {
      // An unwritable path only makes the probe fail; the role keeps running.
    }
  };
  touch();
  const timer = setInterval(touch, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      rmSync(file, { force: true });
    },
  };
}

export * from "./wiring.ts";
