import { TestEnv, waitFor } from "@simbatch/testing";
import { complaints, freePort, run, stopAll, waitHttp, waitListening, type Proc } from "../support/processes.ts";
import { startRedisCluster, type LocalRedisCluster } from "../support/redis-cluster.ts";

const ADMIN_TOKEN = "cluster-test-admin-token-0123456789abcdef";

/**
 * The three roles as real processes on a local 3-master Redis Cluster
 * (REDIS_CLUSTER_NODES): a batch runs end to end, a running job is cancelled
 * through its stop key, and every key the service wrote carries the deployment's
 * hash tag, so all of them sit in one slot on one master.
 */
describe("Redis Cluster", () => {
  const env = new TestEnv();
  const procs: Proc[] = [];
  let cluster: LocalRedisCluster | undefined;
  let url: string;
  let headers: Record<string, string>;

  beforeAll(async () => {
    await env.setup();
    cluster = await startRedisCluster(3);
    const port = await freePort();
    const base = {
      DATABASE_URL: env.databaseUrl,
      // On a Cluster only its credentials and scheme count; the nodes come from REDIS_CLUSTER_NODES.
      REDIS_URL: `redis://127.0.0.1:${cluster.ports[0]}`,
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_PREFIX: env.prefix,
      SIMBATCH_TEST_TEMPLATES: "1",
      LOG_LEVEL: "info",
      SIM_STEP_MS: "0",
      JOB_LOCK_MS: "5000",
    };
    const api = run("apps/api/src/main.ts", { ...base, PORT: String(port), ADMIN_TOKEN });
    procs.push(api);
    procs.push(run("apps/reconciler/src/main.ts", { ...base, SWEEP_INTERVAL_MS: "1000" }));
    procs.push(run("apps/worker/src/main.ts", { ...base, WORKER_CONCURRENCY: "3" }));
    await waitListening(api, port);
    url = `http://127.0.0.1:${port}`;
    // Listening is not ready: a loaded CI machine once took over 2 s for the API's first Postgres query.
    await waitHttp(`${url}/ready`, 60_000);
    const alice = await env.user("alice", "pro");
    headers = { "X-API-Key": alice.key, "Content-Type": "application/json" };
  }, 180_000);

  afterAll(async () => {
    await stopAll(procs);
    await cluster?.stop();
    await env.teardown();
  });

  const logs = () => procs.map((p) => p.output().slice(-3000)).join("\n---\n");
  /** waitFor, with the roles' last output in the message when it times out. */
  const waitOr = async <T>(probe: () => Promise<T | false>, timeoutMs: number, what: string): Promise<T> => {
    try {
      return await waitFor(probe, { timeoutMs, what, intervalMs: 100 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logs()}`, { cause: err });
    }
  };
  const getBatch = async (id: string) => (await (await fetch(`${url}/simulations/batch/${id}`, { headers })).json()) as Record<string, any>;

  it("runs a batch to COMPLETED with exact counts and costs", async () => {
    expect(await (await fetch(`${url}/ready`)).json()).toMatchObject({ status: "ready", checks: { redis: "ok" } });
    const steps = [3, 5, 2, 4, 6, 1];
    const res = await fetch(`${url}/simulations/batch`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        simulations: steps.map((n) => ({ template_id: "test/scripted", config: { steps: n, step_ms: 20 } })),
        parallel_jobs: 2,
        // A cap keeps the batch's live spending in Redis (the step-boundary script's second key).
        budget_cap_usd: 5,
      }),
    });
    expect(res.status).toBe(202);
    // The per-user rate limit (rate-limit-redis) answered on the Cluster.
    expect(res.headers.get("ratelimit-policy")).toBeTruthy();
    const { batch_id } = (await res.json()) as { batch_id: string };

    const done = await waitOr(
      async () => {
        const b = await getBatch(batch_id);
        return b.status === "COMPLETED" ? b : false;
      },
      90_000,
      "batch COMPLETED",
    );
    expect(done.progress).toMatchObject({ total_jobs: 6, completed_jobs: 6, failed_jobs: 0, cancelled_jobs: 0, pending_jobs: 0, running_jobs: 0 });
    // test/scripted charges 0.01 USD and 100 tokens per step: 21 steps.
    expect(done.cost).toMatchObject({ actual_cost_usd: 0.21, tokens_used: 2100, budget_cap_usd: 5 });
    const ledger = await env.core.db.ledgerEntry.aggregate({ where: { batchId: batch_id }, _sum: { costMicros: true } });
    expect(Number(ledger._sum.costMicros)).toBe(210_000);
  }, 120_000);

  it("runs a single simulation (its step boundary has no batch key)", async () => {
    const res = await fetch(`${url}/simulations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ template_id: "test/scripted", config: { steps: 4, step_ms: 20 } }),
    });
    expect(res.status).toBe(202);
    const { job_id } = (await res.json()) as { job_id: string };
    const done = await waitOr(
      async () => {
        const j = (await (await fetch(`${url}/simulations/${job_id}`, { headers })).json()) as Record<string, any>;
        return j.status === "COMPLETED" || j.status === "FAILED" ? j : false;
      },
      60_000,
      "single job finished",
    );
    expect(done).toMatchObject({ status: "COMPLETED", attempts: 1, cost_usd: 0.04, tokens_used: 400 });
  }, 90_000);

  it("cancels a running job through its stop key", async () => {
    const res = await fetch(`${url}/simulations/batch`, {
      method: "POST",
      headers,
      body: JSON.stringify({ simulations: [{ template_id: "test/scripted", config: { steps: 400, step_ms: 50 } }] }),
    });
    expect(res.status).toBe(202);
    const { batch_id, job_ids } = (await res.json()) as { batch_id: string; job_ids: string[] };
    const job = async () => (await (await fetch(`${url}/simulations/${job_ids[0]}`, { headers })).json()) as Record<string, any>;
    await waitOr(async () => (await job()).progress_percent > 0 || false, 60_000, "job running");
    const cancel = await fetch(`${url}/simulations/batch/${batch_id}/cancel`, {
      method: "POST",
      headers,
      body: JSON.stringify({ reason: "cluster test", cancel_running: true }),
    });
    expect(cancel.status).toBe(200);
    const ended = await waitOr(
      async () => {
        const j = await job();
        return j.status === "CANCELLED" ? j : false;
      },
      30_000,
      "job CANCELLED",
    );
    // Stopped at a step boundary well before its 400 steps: charged whole steps, fewer than all.
    expect(ended.cost_usd).toBeGreaterThan(0);
    expect(ended.cost_usd).toBeLessThan(4);
    expect((await getBatch(batch_id)).status).toBe("CANCELLED");
  }, 90_000);

  it("keeps every key under the prefix's hash tag, in one slot, and serves the operations view", async () => {
    const ops = await fetch(`${url}/admin/operations`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ops.status).toBe(200);
    const snapshot = (await ops.json()) as Record<string, any>;
    expect(snapshot.workers).toEqual({ live: 1, capacity: 3 });
    expect(snapshot.events.dead_lettered).toBe(0);

    const tag = `{${env.prefix}}`;
    const byNode = await Promise.all(cluster!.ports.map(async (port) => (await cluster!.cli(port, "--scan")).split("\n").filter(Boolean)));
    const all = byNode.flat();
    // The families the roles write: BullMQ's queue, the event stream, the worker registry,
    // live batch spending, stop keys, API-call counters, rate-limit windows.
    for (const family of ["simulations:", "events", "workers", "batch-spend:", "cancel:", "usage:api:", "rl:"]) {
      expect(all.some((k) => k.startsWith(`${tag}:${family}`))).toBe(true);
    }
    expect(all.filter((k) => !k.startsWith(`${tag}:`))).toEqual([]);
    expect(byNode.filter((keys) => keys.length > 0)).toHaveLength(1);
    const slots = new Set(await Promise.all(all.slice(0, 20).map(async (k) => (await cluster!.cli(cluster!.ports[0]!, "cluster", "keyslot", k)).trim())));
    expect(slots.size).toBe(1);

    // The reconciler listens for dispatch wake-ups on the Cluster's pub/sub (on whichever node it chose).
    const subscribers = await Promise.all(
      cluster!.ports.map(async (port) => Number((await cluster!.cli(port, "pubsub", "numsub", `${tag}:dispatch:wake`)).split("\n")[1] ?? 0)),
    );
    expect(subscribers.reduce((a, b) => a + b, 0)).toBe(1);

    // No role met a Redis error it had to log (a CROSSSLOT reply, a NOSCRIPT it could not recover from, a failed read).
    const logged = complaints(procs);
    expect(logged).toEqual([]);
  }, 60_000);
});
