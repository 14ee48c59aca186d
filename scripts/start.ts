/**
 * `npm start`: the whole service on one machine. Creates and migrates the
 * database, then runs API, worker and reconciler as child processes; SIGTERM or
 * Ctrl-C stops them all gracefully. Operators scaling out run the roles
 * separately (`npm run start:api|start:worker|start:reconciler`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { ApiEnvSchemaChecked, loadEnvOrExit, parseTierLimits, ReconcilerEnvSchema, WorkerEnvSchemaChecked } from "@simbatch/config";
import { migrate } from "./migrate.ts";

const ROOT = path.resolve(__dirname, "..");
const ROLES = ["api", "worker", "reconciler"] as const;

async function main(): Promise<void> {
  // Validate every role's env up front, so a bad key stops everything at once.
  const env = loadEnvOrExit(ApiEnvSchemaChecked, "start");
  loadEnvOrExit(WorkerEnvSchemaChecked, "start");
  loadEnvOrExit(ReconcilerEnvSchema, "start");
  try {
    parseTierLimits(process.env);
  } catch (err) {
    process.stderr.write(`${JSON.stringify({ level: "error", message: `start: ${(err as Error).message}` })}\n`);
    process.exit(1);
  }
  // Migrations need a direct connection (session-level lock); the roles may go through a pooler.
  await migrate(env.DIRECT_DATABASE_URL ?? env.DATABASE_URL);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    for (const child of children.values()) child.kill(signal);
  };
  for (const role of ROLES) {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "apps", role, "src", "main.ts")], { stdio: "inherit", env: process.env });
    children.set(role, child);
    child.on("exit", (code, signal) => {
      children.delete(role);
      if (!stopping) {
        process.stderr.write(`${JSON.stringify({ level: "error", service: "start", message: `${role} exited (${signal ?? code}); stopping the others` })}\n`);
        process.exitCode = 1;
        stopAll("SIGTERM");
      }
      if (children.size === 0) process.exit(process.exitCode ?? 0);
    });
  }
  process.on("SIGTERM", () => stopAll("SIGTERM"));
  process.on("SIGINT", () => stopAll("SIGTERM"));
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ level: "error", service: "start", message: "start failed", error: String(err?.stderr ?? err) })}\n`);
  process.exit(1);
});
