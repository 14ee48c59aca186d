import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { createRedis } from "@simbatch/queue";
import { dbUrl, newTestDbName, REDIS_URL, waitFor, withAdminClient } from "@simbatch/testing";
import { startPgBouncer, type LocalPgBouncer } from "../support/pgbouncer.ts";
import { complaints, freePort, run, stopAll, waitListening, type Proc } from "../support/processes.ts";

const ADMIN_TOKEN = "pgbouncer-test-admin-token-0123456789abcdef";
const POOL_SIZE = 4;

/**
 * The operator's path with PgBouncer in transaction pooling mode: migrations
 * straight to Postgres (DIRECT_DATABASE_URL), then the three roles as real
 * processes with DATABASE_URL on the pooler, their client connections
 * multiplexed over POOL_SIZE server connections. A batch and a single job run
 * end to end with exact costs; nothing the roles do needs a session.
 */
describe("PgBouncer (transaction pooling)", () => {
  const dbName = newTestDbName();
  const prefix = `t${randomBytes(4).toString("hex")}`;
  const procs: Proc[] = [];
  let bouncer: LocalPgBouncer | undefined;
  let url: string;
  let headers: Record<string, string>;

  const logs = () => [bouncer?.output() ?? "", ...procs.map((p) => p.output())].map((o) => o.slice(-3000)).join("\n---\n");
  /** waitFor, with the processes' last output in the message when it times out. */
  const waitOr = async <T>(probe: () => Promise<T | false>, timeoutMs: number, what: string): Promise<T> => {
    try {
      return await waitFor(probe, { timeoutMs, what, intervalMs: 100 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logs()}`, { cause: err });
    }
  };
  const poolsOf = async (what: string) => (await bouncer!.show(what)).filter((r) => r.database === dbName);

  beforeAll(async () => {
    bouncer = await startPgBouncer({ poolSize: POOL_SIZE });
  }, 60_000);

  afterAll(async () => {
    await stopAll(procs);
    await bouncer?.stop();
    const redis = createRedis({ url: REDIS_URL }, "consumer");
    const keys = await redis.keys(`${prefix}:*`).catch(() => [] as string[]);
    if (keys.length > 0) await redis.del(...keys).catch(() => undefined);
    redis.disconnect();
    await withAdminClient((admin) => admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`));
  });

  it("migrates on the direct URL: the pooler never sees the migration", async () => {
    const migrate = run("scripts/migrate.ts", { DATABASE_URL: bouncer!.url(dbName), DIRECT_DATABASE_URL: dbUrl(dbName) });
    const { code } = await migrate.exited;
    expect({ code, output: code === 0 ? "" : migrate.output() }).toEqual({ code: 0, output: "" });
    expect(await poolsOf("POOLS")).toEqual([]);
  }, 120_000);

  it("runs a batch and a single job end to end through the pooler with exact costs", async () => {
    const port = await freePort();
    const base = {
      DATABASE_URL: bouncer!.url(dbName),
      // Debian's PgBouncer is 1.18: in transaction mode it cannot keep named prepared statements (with
      // them on, the reconciler fails with "prepared statement \"dispatch_busy\" does not exist").
      DATABASE_PREPARED_STATEMENTS: "false",
      REDIS_URL,
      REDIS_PREFIX: prefix,
      SIMBATCH_TEST_TEMPLATES: "1",
      LOG_LEVEL: "info",
      SIM_STEP_MS: "0",
      JOB_LOCK_MS: "5000",
      USAGE_FLUSH_INTERVAL_MS: "200",
    };
    const api = run("apps/api/src/main.ts", { ...base, PORT: String(port), ADMIN_TOKEN });
    procs.push(
      api,
      run("apps/reconciler/src/main.ts", { ...base, SWEEP_INTERVAL_MS: "1000" }),
      run("apps/worker/src/main.ts", { ...base, WORKER_CONCURRENCY: "4" }),
    );
    await waitListening(api, port);
    url = `http://127.0.0.1:${port}`;

    // The user and key go through the admin API, so through the pooler too.
    const admin = { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" };
    expect((await fetch(`${url}/admin/users`, { method: "POST", headers: admin, body: JSON.stringify({ user_id: "alice", tier: "pro" }) })).status).toBe(201);
    const key = (await (await fetch(`${url}/admin/users/alice/api-keys`, { method: "POST", headers: admin, body: JSON.stringify({ name: "t" }) })).json()) as {
      api_key: string;
    };
    headers = { "X-API-Key": key.api_key, "Content-Type": "application/json" };

    const steps = [3, 5, 2, 4, 6, 1, 7, 2];
    const res = await fetch(`${url}/simulations/batch`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        simulations: steps.map((n) => ({ template_id: "test/scripted", config: { steps: n, step_ms: 10 } })),
        parallel_jobs: 4,
        budget_cap_usd: 5,
      }),
    });
    expect(res.status).toBe(202);
    const { batch_id } = (await res.json()) as { batch_id: string };
    const single = await fetch(`${url}/simulations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ template_id: "test/scripted", config: { steps: 3, step_ms: 10 } }),
    });
    expect(single.status).toBe(202);
    const { job_id } = (await single.json()) as { job_id: string };

    const done = await waitOr(
      async () => {
        const b = (await (await fetch(`${url}/simulations/batch/${batch_id}`, { headers })).json()) as Record<string, any>;
        return b.status === "COMPLETED" ? b : false;
      },
      90_000,
      "batch COMPLETED",
    );
    expect(done.progress).toMatchObject({ total_jobs: 8, completed_jobs: 8, failed_jobs: 0, cancelled_jobs: 0, pending_jobs: 0, running_jobs: 0 });
    // test/scripted: 0.01 USD and 100 tokens per step; 30 steps.
    expect(done.cost).toMatchObject({ actual_cost_usd: 0.3, tokens_used: 3000, budget_cap_usd: 5, budget_remaining_usd: 4.7 });
    const job = await waitOr(
      async () => {
        const j = (await (await fetch(`${url}/simulations/${job_id}`, { headers })).json()) as Record<string, any>;
        return j.status === "COMPLETED" || j.status === "FAILED" ? j : false;
      },
      60_000,
      "single job finished",
    );
    expect(job).toMatchObject({ status: "COMPLETED", attempts: 1, cost_usd: 0.03, tokens_used: 300 });

    // The money as Postgres holds it (read directly, not through the pooler).
    const direct = new Client({ connectionString: dbUrl(dbName) });
    await direct.connect();
    try {
      const ledger = await direct.query<{ cost: string; n: string }>(
        "SELECT sum(cost_micros)::text AS cost, count(*)::text AS n FROM ledger_entries WHERE kind = 'CHARGE'",
      );
      expect(ledger.rows[0]).toEqual({ cost: "330000", n: "9" });
    } finally {
      await direct.end();
    }
    const usage = await waitOr(
      async () => {
        const u = (await (await fetch(`${url}/simulations/batch/usage`, { headers })).json()) as Record<string, any>;
        return u.cost_used_usd === 0.33 ? u : false;
      },
      20_000,
      "usage shows the charges",
    );
    expect(usage).toMatchObject({ simulations_used: 9, tokens_used: 3300 });

    // The roles really were multiplexed: more client connections than server connections.
    const clients = await poolsOf("CLIENTS");
    const servers = await poolsOf("SERVERS");
    expect(servers.length).toBeGreaterThan(0);
    expect(servers.length).toBeLessThanOrEqual(POOL_SIZE);
    expect(clients.length).toBeGreaterThan(POOL_SIZE);
    // No role met a database error it had to log (a lost prepared statement, a lock held by another session).
    const logged = complaints(procs);
    expect(logged).toEqual([]);
  }, 180_000);
});
