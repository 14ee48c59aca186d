import { TestEnv, waitFor, withAdminClient } from "@simbatch/testing";
import { counterDrift, moneyMismatch, withSql } from "../support/invariants.ts";
import { freePort, run, stopAll, waitHttp, type Proc } from "../support/processes.ts";

/**
 * The roles as real processes, one fault at a time, each mid-batch: the
 * reconciler frozen (SIGSTOP) past every repair timeout, kill -9 of the worker,
 * the reconciler and the API, every Redis key of the deployment deleted, and
 * Postgres unreachable for this database (connections refused and cut) for a
 * few seconds. After each: the batch ends, every job ran exactly once (attempts
 * 1, or 2 where the worker running it was killed), ledger = job charges = usage =
 * batch costs, and every counter is exact. Timeouts are short for speed.
 */
describe("chaos: faults mid-batch, with the roles as processes", () => {
  const env = new TestEnv();
  const procs: Proc[] = [];
  let base: Record<string, string>;
  let port = 0;
  let api: Proc;
  let reconciler: Proc;
  let worker: Proc;
  let key = "";
  const REPAIR_AFTER_MS = 1500;

  const spawnRole = (role: string, extra: Record<string, string> = {}) => {
    const p = run(`apps/${role}/src/main.ts`, { ...base, ...extra });
    procs.push(p);
    return p;
  };
  const startApi = async () => {
    api = spawnRole("api", { PORT: String(port) });
    await waitHttp(`http://127.0.0.1:${port}/health`, 30_000);
  };
  const startReconciler = () =>
    (reconciler = spawnRole("reconciler", {
      SWEEP_INTERVAL_MS: "300",
      REPAIR_AFTER_MS: String(REPAIR_AFTER_MS),
      EVENT_CLAIM_IDLE_MS: "1000",
    }));
  const startWorker = () => (worker = spawnRole("worker", { WORKER_CONCURRENCY: "4", JOB_LOCK_MS: "1000" }));
  const kill9 = async (p: Proc) => {
    p.child.kill("SIGKILL");
    await p.exited;
  };

  beforeAll(async () => {
    await env.setup();
    base = {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      REDIS_PREFIX: env.prefix,
      SIMBATCH_TEST_TEMPLATES: "1",
      LOG_LEVEL: "warn",
      SIM_STEP_MS: "0",
      RATE_LIMIT_ENABLED: "false",
      // A role frozen inside a transaction holds the batch and user rows that every job end needs until
      // Postgres ends its idle session (10 s by default; shorter here, like the repair timeouts).
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: "3000",
    };
    port = await freePort();
    key = (await env.user("chaos", "enterprise")).key;
    await Promise.all([startApi(), startReconciler(), startWorker()]);
  }, 60_000);
  afterAll(async () => {
    await stopAll(procs);
    await env.teardown();
  });

  const url = (p: string) => `http://127.0.0.1:${port}${p}`;
  const headers = () => ({ "X-API-Key": key, "Content-Type": "application/json" });
  const JOBS = 8;

  async function submit(): Promise<{ batchId: string; jobIds: string[] }> {
    const body = {
      simulations: Array.from({ length: JOBS }, () => ({
        template_id: "test/scripted",
        config: { steps: 6, step_ms: 60, cost_usd_per_step: 0.01, tokens_per_step: 10 },
      })),
      parallel_jobs: 4,
    };
    const res = await waitFor(
      async () => {
        const r = await fetch(url("/simulations/batch"), { method: "POST", headers: headers(), body: JSON.stringify(body) }).catch(() => null);
        return r?.status === 202 ? r : false;
      },
      { timeoutMs: 20_000, what: "batch admitted" },
    );
    const b = (await res.json()) as { batch_id: string; job_ids: string[] };
    return { batchId: b.batch_id, jobIds: b.job_ids };
  }

  const rows = (ids: string[]) => env.core.db.simulationJob.findMany({ where: { id: { in: ids } } });
  const runningOrDone = async (ids: string[], n: number) => (await rows(ids)).filter((r) => r.status !== "PENDING").length >= n || false;

  /** The batch ends; each job ran once (or twice where `allowRetry` says its worker died); money and counters agree. */
  async function settle(batch: { batchId: string; jobIds: string[] }, allowRetry: Set<string> = new Set()) {
    await waitFor(async () => (await env.core.db.batch.findUniqueOrThrow({ where: { id: batch.batchId } })).completedAt !== null || false, {
      timeoutMs: 40_000,
      intervalMs: 100,
      what: `batch ${batch.batchId} to end`,
    });
    const b = await env.core.db.batch.findUniqueOrThrow({ where: { id: batch.batchId } });
    expect(b.status).toBe("COMPLETED");
    for (const r of await rows(batch.jobIds)) {
      expect({ id: r.id, status: r.status }).toEqual({ id: r.id, status: "COMPLETED" });
      if (allowRetry.has(r.id)) expect(r.attempts).toBeLessThanOrEqual(2);
      else expect({ id: r.id, attempts: r.attempts }).toEqual({ id: r.id, attempts: 1 });
      // Charged once per attempt: 6 steps for the attempt that ended it, plus what a killed attempt
      // reported (an attempt killed before its first progress event reported nothing and has no row).
      const ledger = await env.core.db.ledgerEntry.findMany({ where: { jobId: r.id } });
      expect(ledger.length).toBeGreaterThanOrEqual(1);
      expect(ledger.length).toBeLessThanOrEqual(r.attempts);
      expect(new Set(ledger.map((l) => l.attempt)).size).toBe(ledger.length);
      expect(ledger.find((l) => l.attempt === r.attempts)?.costMicros).toBe(60_000n);
      expect(ledger.reduce((a, l) => a + l.costMicros, 0n)).toBe(r.costMicros);
    }
    // Charges of events still in flight are part of the check: wait until nothing is left unapplied.
    await waitFor(
      async () =>
        withSql(env.databaseUrl, async (sql) => {
          const drift = await counterDrift(sql);
          const money = await moneyMismatch(sql);
          return Object.values(drift).every((d) => d.length === 0) && money.mismatches.length === 0 ? { drift, money } : false;
        }),
      { timeoutMs: 10_000, intervalMs: 200, what: "counters and money to agree" },
    );
  }

  it("reconciler frozen (SIGSTOP) past every repair timeout: finished jobs are not run again", async () => {
    const batch = await submit();
    await waitFor(() => runningOrDone(batch.jobIds, 2), { timeoutMs: 20_000, what: "jobs started" });
    reconciler.child.kill("SIGSTOP");
    const stoppedAt = Date.now();
    try {
      // The released jobs finish while nothing applies their events (a completed run is ended by its worker; any
      // other end leaves its outcome recorded on a RUNNING job); time passes every repair timeout.
      await waitFor(
        async () => {
          const now = await rows(batch.jobIds);
          const running = now.filter((r) => r.status === "RUNNING").map((r) => r.id);
          const recorded = await env.core.db.jobAttemptOutcome.count({ where: { jobId: { in: running } } });
          const completed = now.filter((r) => r.status === "COMPLETED").length;
          return (completed > 0 && recorded === running.length && Date.now() - stoppedAt > REPAIR_AFTER_MS * 2) || false;
        },
        { timeoutMs: 20_000, what: "released jobs to finish while frozen" },
      );
    } finally {
      reconciler.child.kill("SIGCONT");
    }
    await settle(batch);
  });

  it("kill -9 of the worker mid-batch: its jobs run again on a new worker", async () => {
    const batch = await submit();
    await waitFor(() => runningOrDone(batch.jobIds, 3), { timeoutMs: 20_000, what: "jobs started" });
    const interrupted = new Set((await rows(batch.jobIds)).filter((r) => r.status === "RUNNING").map((r) => r.id));
    await kill9(worker);
    startWorker();
    await settle(batch, interrupted);
  });

  it("kill -9 of the reconciler mid-batch", async () => {
    const batch = await submit();
    await waitFor(() => runningOrDone(batch.jobIds, 3), { timeoutMs: 20_000, what: "jobs started" });
    await kill9(reconciler);
    startReconciler();
    await settle(batch);
  });

  it("kill -9 of the API mid-batch", async () => {
    const batch = await submit();
    await waitFor(() => runningOrDone(batch.jobIds, 3), { timeoutMs: 20_000, what: "jobs started" });
    await kill9(api);
    await startApi();
    await settle(batch);
  });

  it("every Redis key of the deployment deleted mid-batch", async () => {
    const batch = await submit();
    await waitFor(() => runningOrDone(batch.jobIds, 3), { timeoutMs: 20_000, what: "jobs started" });
    const keys = await env.core.redis.keys(`${env.prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await env.core.redis.del(...keys);
    await settle(batch);
  });

  it("Postgres unreachable for this database for a few seconds mid-batch", async () => {
    const batch = await submit();
    await waitFor(() => runningOrDone(batch.jobIds, 3), { timeoutMs: 20_000, what: "jobs started" });
    const cutAt = Date.now();
    await withAdminClient(async (admin) => {
      await admin.query(`ALTER DATABASE "${env.dbName}" ALLOW_CONNECTIONS false`);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [env.dbName]);
    });
    try {
      await waitFor(() => Date.now() - cutAt > 3000 || false, { timeoutMs: 10_000, what: "outage to last" });
    } finally {
      await withAdminClient((admin) => admin.query(`ALTER DATABASE "${env.dbName}" ALLOW_CONNECTIONS true`));
    }
    await settle(batch);
    // Every role is still up.
    for (const p of [api, reconciler, worker]) expect(p.child.exitCode).toBeNull();
  });
});
