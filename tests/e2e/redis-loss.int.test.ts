import { waitFor } from "@simbatch/testing";
import { Stack, scripted } from "../support/stack.ts";

/**
 * Redis is transport, Postgres the truth: when Redis loses everything of the
 * deployment mid-batch (a restart without persistence), the sweep puts the work
 * back and the batch still finishes with every job charged exactly once.
 */
describe("losing Redis mid-batch", () => {
  // A job that ends right across the wipe has its outcome in Postgres but its completion
  // event gone with the stream: the sweep applies such an outcome once it is
  // repairAfterMs old (60 s by default, longer than this test waits), so the test uses 3 s.
  const stack = new Stack({ workers: [2], lockDurationMs: 1500, repairAfterMs: 3_000 });
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  async function wipeRedis(): Promise<number> {
    const redis = stack.env.core.redis;
    let cursor = "0";
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${stack.env.prefix}:*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== "0");
    return deleted;
  }

  it("re-enqueues from Postgres and finishes with exact costs", async () => {
    const alice = await stack.env.user("alice", "pro");
    const res = await stack
      .http()
      .post("/simulations/batch")
      .set("X-API-Key", alice.key)
      .send({
        parallel_jobs: 2,
        simulations: Array.from({ length: 6 }, () => scripted({ steps: 10, step_ms: 40, cost_usd_per_step: 0.01 })),
      });
    expect(res.status).toBe(202);
    const id = res.body.batch_id;
    await stack.waitBatch(alice.key, id, (b) => b.progress.completed_jobs >= 1 && b.progress.running_jobs >= 1);
    expect(await wipeRedis()).toBeGreaterThan(0);
    // The periodic sweep (every SWEEP_INTERVAL_MS in production; this stack's is a minute) puts the
    // work back. A job can end right across the wipe: its outcome is recorded in Postgres but its
    // completion event is gone with the stream, so only a sweep repairAfterMs after that end applies
    // it (seen here: one such job left RUNNING when the test ran a single sweep at once, and, in a
    // CI run, past this test's wait while repairAfterMs was the 60 s default).
    const done = await waitFor(
      async () => {
        await stack.reconciler.sweepOnce();
        const b = await stack.http().get(`/simulations/batch/${id}`).set("X-API-Key", alice.key);
        return b.body.completed_at !== null && b.body;
      },
      { timeoutMs: 45_000, intervalMs: 500, what: "the batch to finish after the wipe" },
    );
    expect(done).toMatchObject({ status: "COMPLETED", stop_reason: null });
    expect(done.progress).toMatchObject({ completed_jobs: 6, total_jobs: 6 });
    expect(done.cost.actual_cost_usd).toBeCloseTo(0.6, 10);
    const ledger = await stack.env.core.db.ledgerEntry.findMany({ where: { batchId: id } });
    expect(ledger).toHaveLength(6);
    expect(new Set(ledger.map((l) => l.jobId)).size).toBe(6);
    expect(ledger.every((l) => l.costMicros === 100_000n)).toBe(true);
  });
});
