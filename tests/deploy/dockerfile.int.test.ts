import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "pg";
import { dbUrl, newTestDbName, REDIS_URL, waitFor, withAdminClient } from "@simbatch/testing";
import { createRedis } from "@simbatch/queue";
import { build, cleanContext, hostPath, parseDockerfile, type Stage } from "../support/dockerfile.ts";
import { freePort } from "../support/processes.ts";

const ROOT = path.resolve(__dirname, "../..");

/** One request on its own connection (no keep-alive reuse racing the server's idle timeout); status and body. */
function call(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? "GET", headers: opts.headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += String(d)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}
const ADMIN = "image-test-admin-token-0123456789abcdef";

/**
 * Docker cannot run here, so this runs the Dockerfile's own steps
 * (tests/support/dockerfile.ts): a clean copy of the tree through
 * .dockerignore as the build context, the build stage's install, Prisma
 * generate and production prune (npm from its local cache), the runtime stage's
 * copy, then the image's entry point and commands with the image's ENV and
 * nothing of this process' environment: migrate a new database, run api,
 * worker and reconciler, pass their HEALTHCHECK, create a user with the admin
 * command, and run a job end to end.
 */
describe("the Dockerfile, run without Docker", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "simbatch-image-"));
  const dbName = newTestDbName();
  const databaseUrl = dbUrl(dbName);
  const prefix = `img${randomBytes(4).toString("hex")}`;
  const procs: ChildProcess[] = [];
  let files: string[];
  let stages: Stage[];
  let image: Stage;

  /** The environment a container of the image starts with, plus `extra`. */
  const containerEnv = (extra: Record<string, string>) => ({
    PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    HOME: path.join(work, "home"),
    ...image.env,
    ...extra,
  });
  /** argv of a container: ENTRYPOINT + (args or CMD), the entry point's path inside the image's filesystem. */
  const argv = (args?: string[]) => {
    const [first, ...rest] = [...(image.entrypoint ?? []), ...(args ?? image.cmd ?? [])];
    return [first!.startsWith("/") && existsSync(path.join(image.root, first!)) ? path.join(image.root, first!) : first!, ...rest];
  };
  const cwd = () => hostPath(image, image.workdir);
  const runOnce = (args: string[], env: Record<string, string>) => {
    const [cmd, ...rest] = argv(args);
    return spawnSync(cmd!, rest, { cwd: cwd(), env: containerEnv(env), encoding: "utf8", timeout: 120_000 });
  };
  const start = (args: string[] | undefined, env: Record<string, string>) => {
    const [cmd, ...rest] = argv(args);
    const child = spawn(cmd!, rest, { cwd: cwd(), env: containerEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += String(d)));
    child.stderr!.on("data", (d) => (out += String(d)));
    procs.push(child);
    return { child, output: () => out };
  };
  const healthcheck = (env: Record<string, string>) => {
    const [cmd, ...rest] = image.healthcheck!;
    return spawnSync(cmd!, rest, { cwd: cwd(), env: containerEnv(env), encoding: "utf8", timeout: 30_000 }).status;
  };
  const roleEnv = { DATABASE_URL: databaseUrl, REDIS_URL, REDIS_PREFIX: prefix, SIMBATCH_TEST_TEMPLATES: "1", LOG_LEVEL: "warn" };

  beforeAll(() => {
    const context = path.join(work, "context");
    files = cleanContext(ROOT, context);
    stages = build(parseDockerfile(readFileSync(path.join(ROOT, "Dockerfile"), "utf8")), {
      context,
      workspace: work,
      // npm from this machine's cache (no registry round trips for what it holds).
      runEnv: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? os.homedir(),
        npm_config_prefer_offline: "true",
        npm_config_update_notifier: "false",
      },
    });
    image = stages[stages.length - 1]!;
  }, 600_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    const redis = createRedis({ url: REDIS_URL }, "consumer");
    const keys = await redis.keys(`${prefix}:*`).catch(() => [] as string[]);
    if (keys.length > 0) await redis.del(...keys).catch(() => undefined);
    redis.disconnect();
    await withAdminClient((admin) => admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`));
    rmSync(work, { recursive: true, force: true });
  });

  it("builds from a clean copy of the tree into a runtime stage with production dependencies only, run by a non-root user", () => {
    // The context: the tree as git knows it, through .dockerignore.
    expect(files).toContain("package-lock.json");
    expect(files).toContain("prisma/schema.prisma");
    expect(files.filter((f) => /(^|\/)(node_modules|tests?|generated)\//.test(f) || f.startsWith(".git/") || f.endsWith(".md"))).toEqual([]);

    expect(stages.map((s) => s.name)).toEqual(["build", "runtime"]);
    expect(readFileSync(path.join(ROOT, "Dockerfile"), "utf8")).toMatch(/^ARG NODE_IMAGE=node:20[-.a-z0-9]*$/m);
    const app = (p: string) => existsSync(path.join(hostPath(image, image.workdir), p));
    // What the roles run on: tsx, the Prisma CLI and its adapter (migrate), the generated client, the workspaces.
    for (const p of [
      "node_modules/tsx",
      "node_modules/prisma",
      "node_modules/prisma-adapter-pg-cli",
      "node_modules/@simbatch/core",
      "packages/db/src/generated/client.ts",
    ]) {
      expect({ p, present: app(p) }).toEqual({ p, present: true });
    }
    // Dev tooling pruned; the build stage had it.
    for (const p of ["node_modules/jest", "node_modules/typescript-eslint", "node_modules/@swc/core", "node_modules/turbo"]) {
      expect({ p, present: app(p) }).toEqual({ p, present: false });
      expect(existsSync(path.join(stages[0]!.root, "app", p))).toBe(false); // pruned in place, then copied
    }
    expect(image.user).toBe("node");
    expect(image.expose).toEqual(["8080"]);
    expect(image.entrypoint).toEqual(["/app/scripts/docker-entrypoint.sh"]);
    expect(image.cmd).toEqual(["api"]);
    expect(image.healthcheck).toEqual(["node", "scripts/healthcheck.mjs"]);
    expect(image.env).toMatchObject({ NODE_ENV: "production", PORT: "8080" });
  });

  it("migrates a new database with the image's migrate command", async () => {
    const res = runOnce(["migrate"], { DATABASE_URL: databaseUrl });
    expect({ status: res.status, out: res.status === 0 ? "" : `${res.stdout}${res.stderr}` }).toEqual({ status: 0, out: "" });
    const migrations = readdirSync(path.join(ROOT, "prisma/migrations")).filter((d) => /^\d{14}_/.test(d));
    const sql = new Client({ connectionString: databaseUrl });
    await sql.connect();
    try {
      const { rows } = await sql.query("SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY 1");
      expect(rows.map((r) => r.migration_name)).toEqual(migrations.sort());
    } finally {
      await sql.end();
    }
  }, 180_000);

  it("runs api, worker and reconciler from the image: /health answers 200, every HEALTHCHECK passes, a job completes", async () => {
    const port = await freePort();
    const api = start(undefined, { ...roleEnv, PORT: String(port), ADMIN_TOKEN: ADMIN });
    const workerFile = path.join(work, "worker.alive");
    const reconcilerFile = path.join(work, "reconciler.alive");
    start(["worker"], { ...roleEnv, SIM_STEP_MS: "0", HEALTH_FILE: workerFile });
    start(["reconciler"], { ...roleEnv, HEALTH_FILE: reconcilerFile });

    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (api.child.exitCode !== null) throw new Error(`api exited:\n${api.output()}`);
        return (
          (await call(`${base}/health`).then(
            (r) => r.status,
            () => 0,
          )) === 200
        );
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "GET /health of the image's api" },
    );
    expect(healthcheck({ PORT: String(port) })).toBe(0);
    expect((await call(`${base}/ready`)).status).toBe(200);
    await waitFor(() => existsSync(workerFile) && existsSync(reconcilerFile), { timeoutMs: 60_000, intervalMs: 200, what: "health files" });
    expect(healthcheck({ HEALTH_FILE: workerFile })).toBe(0);
    expect(healthcheck({ HEALTH_FILE: reconcilerFile })).toBe(0);
    // The check fails when its target does not answer: a file never written, a port nobody listens on.
    expect(healthcheck({ HEALTH_FILE: path.join(work, "nobody.alive") })).toBe(1);
    expect(healthcheck({ PORT: String(await freePort()) })).toBe(1);

    const user = runOnce(["admin", "users", "create", "--id", "image-user", "--tier", "pro"], roleEnv);
    expect(user.status).toBe(0);
    const key = runOnce(["admin", "keys", "create", "--user", "image-user"], roleEnv);
    expect(key.status).toBe(0);
    const apiKey = (JSON.parse(key.stdout) as { api_key: string }).api_key;

    const submitted = await call(`${base}/simulations`, {
      method: "POST",
      headers: { "X-API-Key": apiKey, "Content-Type": "application/json" },
      body: JSON.stringify({ template_id: "test/scripted", config: { steps: 2 } }),
    });
    expect(submitted.status).toBe(202);
    const { job_id } = JSON.parse(submitted.body) as { job_id: string };
    await waitFor(
      async () => {
        const job = JSON.parse((await call(`${base}/simulations/${job_id}`, { headers: { "X-API-Key": apiKey } })).body) as { status: string };
        return job.status === "COMPLETED" || (job.status === "FAILED" ? Promise.reject(new Error("job failed")) : false);
      },
      { timeoutMs: 60_000, intervalMs: 100, what: "the job to complete" },
    );

    // SIGTERM reaches node through the entry point (exec): a graceful exit 0.
    const exited = new Promise<number | null>((resolve) => api.child.on("exit", (code) => resolve(code)));
    api.child.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 240_000);
});
