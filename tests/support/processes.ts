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
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/**
 * A port free right now, picked below the kernel's ephemeral range: a port the
 * kernel handed out (listen on 0) may be given again at once to some client's
 * outgoing connection, and the server spawned for it then fails to bind while a
 * test talks to whatever else holds the port.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once("error", () => resolve(false));
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Waits until a spawned API (or `npm start`) says it listens on `port`; fails at once if it exits first. */
export async function waitListening(proc: Proc, port: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    () => {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(`process exited before listening on ${port}:\n${proc.output().slice(-2000)}`);
      }
      return proc.output().includes('"message":"api listening"') && proc.output().includes(`"port":${port}`);
    },
    { timeoutMs, what: `api listening on ${port}`, intervalMs: 50 },
  );
}

export async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () =>
      (await fetch(url)
        .then((r) => r.ok)
        .catch(() => false)) || false,
    { timeoutMs, what: url, intervalMs: 100 },
  );
}

export async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
}

/**
 * The warning and error lines the processes logged, less one benign race: a
 * sweep may read a job as RUNNING without an outcome just before its worker
 * records one and completes it in BullMQ, then see BullMQ's "completed" and
 * re-add the job, whose claim is refused (the attempt has an outcome).
 */
export function complaints(procs: Proc[]): string[] {
  const sweepRace = (line: string) => line.includes('"message":"re-enqueued a job with no live BullMQ job"') && line.includes('"bullmq_state":"completed"');
  return procs.flatMap((p) => p.output().split("\n")).filter((line) => /"level":"(warn|error)"/.test(line) && !sweepRace(line));
}
