import { TestEnv, waitFor } from "@simbatch/testing";
import { freePort, run, stopAll, waitHttp, waitListening, type Proc } from "../support/processes.ts";

/**
 * The roles as real processes: what operators run. Covers boot-time env
 * validation, `npm start` creating and migrating a database, graceful SIGTERM,
 * and a worker killed mid-run with the job still completing, each attempt charged once.
 */
describe("service processes", () => {
  const env = new TestEnv();
  const procs: Proc[] = [];
  let base: Record<string, string>;

  beforeAll(async () => {
    await env.setup();
    base = {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      REDIS_PREFIX: env.prefix,
      SIMBATCH_TEST_TEMPLATES: "1",
      LOG_LEVEL: "info",
      SIM_STEP_MS: "0",
      JOB_LOCK_MS: "2000",
    };
  });
  afterAll(async () => {
    await stopAll(procs);
    await env.teardown();
  });

  const spawnRole = (role: string, extra: Record<string, string> = {}) => {
    const p = run(`apps/${role}/src/main.ts`, { ...base, ...extra });
    procs.push(p);
    return p;
  };

  it("exits at once naming the bad env key", async () => {
    const p = run("apps/api/src/main.ts", { ...base, PORT: "eighty", WORKER_CONCURRENCY: "1" });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.output()).toContain("PORT");
    const q = run("apps/reconciler/src/main.ts", { ...base, QUOTA_FREE_SIMULATIONS: "many" });
    expect((await q.exited).code).toBe(1);
    expect(q.output()).toContain("QUOTA_FREE_SIMULATIONS");
    const w = run("apps/worker/src/main.ts", { ...base, WORKER_CONCURRENCY: "0" });
    expect((await w.exited).code).toBe(1);
    expect(w.output()).toContain("WORKER_CONCURRENCY");
  });

  it("manages users and keys with the admin CLI", async () => {
    const cli = async (...args: string[]) => {
      const p = run("apps/api/src/cli/admin.ts", base, args);
      const { code } = await p.exited;
      return { code, out: p.output() };
    };
    const user = await cli("users", "create", "--id", "cli-user", "--tier", "basic");
    expect(user.code).toBe(0);
    expect(JSON.parse(user.out)).toMatchObject({ user_id: "cli-user", tier: "basic" });
    const key = await cli("keys", "create", "--user", "cli-user");
    const created = JSON.parse(key.out) as { key_id: string; api_key: string };
    expect(created.api_key).toMatch(/^tp_[0-9a-f]{32}$/);
    expect((await cli("keys", "revoke", created.key_id)).code).toBe(0);
    const row = await env.core.db.apiKey.findUniqueOrThrow({ where: { id: created.key_id } });
    expect(row.revokedAt).not.toBeNull();
    const bad = await cli("users", "create", "--id", "x", "--tier", "platinum");
    expect(bad.code).toBe(2);
    expect(bad.out).toContain("--tier");
    expect((await cli("keys", "create", "--user", "nobody")).out).toContain("NotFound");
    // --help prints the usage; an unknown option says which, with the usage, and no stack trace.
    const help = await cli("--help");
    expect(help).toMatchObject({ code: 0 });
    expect(help.out).toContain("admin keys create --user USER_ID");
    const unknown = await cli("users", "create", "--idd", "x");
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain("Unknown option '--idd'");
    expect(unknown.out).toContain("usage:");
    expect(unknown.out).not.toContain("    at ");
    // The admin API's rules: a user id it would refuse is refused here too, naming the flag.
    for (const id of ["bad id", "", "q".repeat(65)]) {
      const refused = await cli("users", "create", "--id", id);
      expect({ id, code: refused.code }).toEqual({ id, code: 2 });
      expect(refused.out).toContain("--id: must be 1-64 characters");
    }
    expect(await env.core.db.user.count({ where: { id: { in: ["bad id", ""] } } })).toBe(0);
  }, 60_000);

  it("adjusts usage with the admin CLI, as the admin API does: the ledger entry and the live API-call count", async () => {
    const cli = async (...args: string[]) => {
      const p = run("apps/api/src/cli/admin.ts", base, args);
      const { code } = await p.exited;
      return { code, out: p.output() };
    };
    expect((await cli("users", "create", "--id", "cli-usage")).code).toBe(0);
    const period = new Date().toISOString().slice(0, 7);
    // The quota gate's live count of the period, as an API process would have seeded it.
    const live = `${env.prefix}:usage:api:${period}:cli-usage`;
    await env.redis().set(live, "40");
    const adj = await cli("usage", "adjust", "--user", "cli-usage", "--simulations=-2", "--api-calls", "5", "--cost-usd", "1.5", "--reason", "goodwill");
    expect(adj.code).toBe(0);
    expect(JSON.parse(adj.out)).toMatchObject({ user_id: "cli-usage", period, api_calls: 5, simulations: -2, cost_usd: 1.5, tokens: 0, reason: "goodwill" });
    expect(await env.redis().get(live)).toBe("45");
    const entries = await env.core.db.ledgerEntry.findMany({ where: { userId: "cli-usage", kind: "ADJUSTMENT" } });
    expect(entries.map((e) => [e.period, Number(e.apiCalls), e.simulations, Number(e.costMicros)])).toEqual([[period, 5, -2, 1_500_000]]);
    // Wrong input as the API's 422 would name it; nothing written.
    const zero = await cli("usage", "adjust", "--user", "cli-usage", "--tokens", "0", "--reason", "nothing");
    expect(zero.code).toBe(2);
    expect(zero.out).toContain("at least one of api_calls, simulations, cost_usd, tokens must be non-zero");
    const badPeriod = await cli("usage", "adjust", "--user", "cli-usage", "--simulations", "1", "--period", "2026-13x", "--reason", "x");
    expect(badPeriod.code).toBe(2);
    expect(badPeriod.out).toContain("--period: must be YYYY-MM");
    expect((await cli("usage", "adjust", "--user", "cli-usage", "--simulations", "many", "--reason", "x")).out).toContain("--simulations: must be a number");
    expect((await cli("usage", "adjust", "--user", "nobody", "--simulations", "1", "--reason", "x")).out).toContain("NotFound");
    expect(await env.core.db.ledgerEntry.count({ where: { kind: "ADJUSTMENT", userId: { in: ["cli-usage", "nobody"] } } })).toBe(1);
  }, 60_000);

  it("npm start creates and migrates a missing database, serves, and stops on SIGTERM", async () => {
    const dbName = `${env.dbName}_fresh`;
    const port = await freePort();
    const start = run("scripts/start.ts", { ...base, DATABASE_URL: env.databaseUrl.replace(env.dbName, dbName), PORT: String(port) });
    procs.push(start);
    try {
      await waitHttp(`http://127.0.0.1:${port}/ready`, 60_000);
      const ready = await (await fetch(`http://127.0.0.1:${port}/ready`)).json();
      expect(ready).toMatchObject({ status: "ready", checks: { postgres: "ok", redis: "ok" } });
      // The API answers before the other roles have loaded: a signal that reached a role still
      // loading its modules would end it before it can stop gracefully (a CI run saw that).
      await waitFor(() => start.output().includes("worker started") && start.output().includes("reconciler started"), {
        timeoutMs: 60_000,
        what: "worker and reconciler started",
      });
      start.child.kill("SIGTERM");
      const { code } = await start.exited;
      expect(code).toBe(0);
      expect(start.output()).toContain("worker stopped");
    } finally {
      const { Client } = await import("pg");
      const admin = new Client({ connectionString: env.databaseUrl.replace(env.dbName, "postgres") });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
      await admin.end();
    }
  }, 90_000);

  it("finishes a job after its worker is killed mid-run, each attempt charged once", async () => {
    const port = await freePort();
    const api = spawnRole("api", { PORT: String(port) });
    const reconciler = spawnRole("reconciler", { SWEEP_INTERVAL_MS: "1000" });
    const worker1 = spawnRole("worker", { WORKER_CONCURRENCY: "1" });
    await waitListening(api, port);
    await waitHttp(`http://127.0.0.1:${port}/health`, 60_000);
    const alice = await env.user("alice", "pro");
    const url = `http://127.0.0.1:${port}`;
    const headers = { "X-API-Key": alice.key, "Content-Type": "application/json", "X-Request-Id": "trace-kill-1" };
    const res = await fetch(`${url}/simulations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ template_id: "test/scripted", config: { steps: 60, step_ms: 100 } }),
    });
    expect(res.status).toBe(202);
    const { job_id } = (await res.json()) as { job_id: string };
    const get = async () => (await (await fetch(`${url}/simulations/${job_id}`, { headers })).json()) as Record<string, any>;
    await waitFor(
      async () => {
        const j = await get();
        return j.status === "RUNNING" && j.progress_percent >= 5;
      },
      { timeoutMs: 45_000, what: "progress" },
    );

    worker1.child.kill("SIGKILL");
    await worker1.exited;
    const worker2 = spawnRole("worker", { WORKER_CONCURRENCY: "1" });
    const done = await waitFor(
      async () => {
        const j = await get();
        return j.status === "COMPLETED" ? j : false;
      },
      { timeoutMs: 60_000, what: "completion" },
    );
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    // Every attempt's reported spending is charged (docs/reliability.md): the killed
    // attempt's last reported steps when the next attempt claimed the job, plus the full run.
    const ledger = await env.core.db.ledgerEntry.findMany({ where: { jobId: job_id }, orderBy: { attempt: "asc" } });
    expect(ledger).toHaveLength(done.attempts);
    expect(Number(ledger[ledger.length - 1]!.costMicros)).toBe(600_000);
    const total = ledger.reduce((a, l) => a + Number(l.costMicros), 0);
    expect(total).toBeGreaterThanOrEqual(600_000 + 30_000); // the killed attempt had reported >= 5% (3 steps)
    expect(done.cost_usd).toBeCloseTo(total / 1e6, 10);
    // The client's request id follows the work into the worker's and reconciler's logs.
    await waitFor(() => worker2.output().includes("trace-kill-1") || false, { timeoutMs: 30_000, what: "request id in worker log" });
    expect(api.output()).toContain("trace-kill-1");
    await waitFor(() => reconciler.output().includes("trace-kill-1") || false, { timeoutMs: 30_000, what: "request id in reconciler log" });

    // SIGTERM mid-run: the worker stops at the next step boundary and exits 0
    // (a stop that overran SHUTDOWN_TIMEOUT_MS would exit 1); the job is
    // retried on another worker; each attempt is charged once, for what it reported.
    const second = await fetch(`${url}/simulations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ template_id: "test/scripted", config: { steps: 100, step_ms: 100 } }),
    });
    const secondId = ((await second.json()) as { job_id: string }).job_id;
    const getSecond = async () => (await (await fetch(`${url}/simulations/${secondId}`, { headers })).json()) as Record<string, any>;
    await waitFor(
      async () => {
        const j = await getSecond();
        return j.status === "RUNNING" && j.progress_percent >= 3;
      },
      { timeoutMs: 45_000, what: "second job running" },
    );
    worker2.child.kill("SIGTERM");
    const exit = await worker2.exited;
    expect(exit.code).toBe(0);
    expect(worker2.output()).toContain("worker stopped");
    spawnRole("worker", { WORKER_CONCURRENCY: "1" });
    const finished = await waitFor(
      async () => {
        const j = await getSecond();
        return j.status === "COMPLETED" ? j : false;
      },
      { timeoutMs: 90_000, what: "second job completion" },
    );
    expect(finished.attempts).toBeGreaterThanOrEqual(2);
    // The attempt cut short by the shutdown is charged what it reported, the new attempt its full run.
    const charges = await env.core.db.ledgerEntry.findMany({ where: { jobId: secondId }, orderBy: { attempt: "asc" } });
    expect(charges).toHaveLength(finished.attempts);
    expect(Number(charges[charges.length - 1]!.costMicros)).toBe(1_000_000);
    expect(finished.cost_usd).toBeCloseTo(charges.reduce((a, l) => a + Number(l.costMicros), 0) / 1e6, 10);
  }, 240_000);
});
