import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { waitFor } from "@simbatch/testing";

const ROOT = path.resolve(__dirname, "../..");

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs a TypeScript entry point as a real process (node with the tsx loader, so
 * signals reach the process itself), capturing its output.
 */
export function run(script: string, env: Record<string, string>, args: string[] = [], nodeArgs: string[] = []): Proc {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.join(ROOT, script), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await fetch(url).then((r) => r.ok).catch(() => false)) || false, { timeoutMs, what: url, intervalMs: 100 });
}

export async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
}
