import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { waitFor } from "@simbatch/testing";
import { freePort } from "./processes.ts";

const exec = promisify(execFile);

export interface LocalRedisCluster {
  ports: number[];
  /** As REDIS_CLUSTER_NODES wants it. */
  nodes: string;
  /** redis-cli against one node (its own keys; add `-c` to follow redirections). */
  cli(port: number, ...args: string[]): Promise<string>;
  /** What the servers printed (for a failure message). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` masters and no replicas on 127.0.0.1, each a
 * `redis-server` child with its own data port and cluster-bus port (both picked
 * free), no persistence, config in a temporary directory removed on stop.
 */
export async function startRedisCluster(masters = 3): Promise<LocalRedisCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "simbatch-redis-cluster-"));
  const servers: { port: number; child: ChildProcess; exited: Promise<void> }[] = [];
  let out = "";
  const cli = async (port: number, ...args: string[]) => (await exec("redis-cli", ["-p", String(port), ...args], { timeout: 20_000 })).stdout;
  const stop = async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    await Promise.all(servers.map((s) => s.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const used = new Set<number>();
    const pick = async () => {
      for (;;) {
        const p = await freePort();
        if (!used.has(p)) return (used.add(p), p);
      }
    };
    for (let i = 0; i < masters; i++) {
      const port = await pick();
      const bus = await pick();
      // The arguments the issue names, plus an explicit bus port (data port + 10000 could be taken) and the directory.
      const child = spawn(
        "redis-server",
        [
          ...["--port", String(port), "--cluster-port", String(bus), "--bind", "127.0.0.1"],
          ...["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--dir", dir],
          ...["--save", "", "--appendonly", "no", "--daemonize", "no"],
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      child.stdout!.on("data", (d) => (out += String(d)));
      child.stderr!.on("data", (d) => (out += String(d)));
      const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
      child.on("error", (err) => (out += `\nredis-server: ${err.message}`));
      servers.push({ port, child, exited });
    }
    const ports = servers.map((s) => s.port);
    for (const port of ports) {
      await waitFor(async () => (await cli(port, "ping").catch(() => "")).trim() === "PONG" || false, {
        timeoutMs: 20_000,
        what: `redis-server on ${port}\n${out.slice(-1500)}`,
      });
    }
    await exec("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"], { timeout: 60_000 });
    for (const port of ports) {
      await waitFor(async () => (await cli(port, "cluster", "info")).includes("cluster_state:ok") || false, {
        timeoutMs: 30_000,
        what: `cluster_state:ok on ${port}`,
      });
    }
    return { ports, nodes: ports.map((p) => `127.0.0.1:${p}`).join(","), cli, output: () => out, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
