import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { PG_ADMIN_URL, waitFor } from "@simbatch/testing";
import { freePort } from "./processes.ts";

const exec = promisify(execFile);

export interface LocalPgBouncer {
  port: number;
  /** A connection string to `database` through the pooler. */
  url(database: string): string;
  /** A query on PgBouncer's admin console (`SHOW POOLS`, `SHOW CLIENTS`, ...). */
  show(what: string): Promise<Record<string, unknown>[]>;
  output(): string;
  stop(): Promise<void>;
}

/** Fails (never skips) when the binary is missing: a test that needs PgBouncer must not pass without it. */
async function requirePgBouncer(): Promise<void> {
  try {
    await exec("pgbouncer", ["--version"], { timeout: 10_000 });
  } catch (err) {
    throw new Error("pgbouncer is not installed: `apt-get install -y pgbouncer` (.ci/run installs it when missing)", { cause: err });
  }
}

/**
 * PgBouncer in transaction pooling mode on 127.0.0.1 in front of the test
 * Postgres (every database name passed through to it; trust auth for its
 * users; no unix socket). `poolSize` server connections per database and user,
 * so the roles' client connections are multiplexed over few server ones.
 * PgBouncer refuses to run as root: as root it is started with `-u postgres`.
 */
export async function startPgBouncer(opts: { poolSize: number }): Promise<LocalPgBouncer> {
  await requirePgBouncer();
  const upstream = new URL(PG_ADMIN_URL);
  const user = decodeURIComponent(upstream.username || "postgres");
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "simbatch-pgbouncer-"));
  // Readable by the user it drops to.
  chmodSync(dir, 0o755);
  const ini = path.join(dir, "pgbouncer.ini");
  const users = path.join(dir, "users.txt");
  writeFileSync(users, `"${user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=${upstream.hostname} port=${upstream.port || "5432"}`,
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${users}`,
      `admin_users = ${user}`,
      "pool_mode = transaction",
      `default_pool_size = ${opts.poolSize}`,
      "min_pool_size = 0",
      "reserve_pool_size = 0",
      "max_client_conn = 500",
      "logfile =",
      "pidfile =",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn("pgbouncer", [...(asRoot ? ["-u", "postgres"] : []), ini], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  child.on("error", (err) => (out += `\npgbouncer: ${err.message}`));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));

  const url = (database: string) => `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`;
  const show = async (what: string) => {
    const admin = new Client({ connectionString: url("pgbouncer") });
    await admin.connect();
    try {
      // The admin console speaks the simple query protocol only: no parameters.
      return (await admin.query(`SHOW ${what}`)).rows as Record<string, unknown>[];
    } finally {
      await admin.end();
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`pgbouncer exited:\n${out.slice(-2000)}`);
        return out.includes(`listening on 127.0.0.1:${port}`) || false;
      },
      { timeoutMs: 20_000, what: "pgbouncer listening" },
    );
    return { port, url, show, output: () => out, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
