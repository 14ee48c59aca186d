import { Stack, scripted } from "../support/stack.ts";

/**
 * A worker dies or shuts down mid-batch: BullMQ redelivers its jobs (short lock so
 * stalled jobs come back quickly), another worker runs them, and each job is
 * charged exactly once, for the attempt that ended it.
 */
describe("batch costs across worker crashes and shutdowns", () => {
  const stack = new Stack({ workers: [3], lockDurationMs: 1500 });
  let u: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    u = await stack.env.user("crashy", "enterprise");
  });
  afterAll(() => stack.stop());

  const sim = scripted({ steps: 10, step_ms: 40, cost_usd_per_step: 0.01, tokens_per_step: 100 });

  async function runThrough(stopWorker: () => Promise<void>) {
    const res = await stack.submitBatch(u.key, { simulations: Array.from({ length: 6 }, () => sim), parallel_jobs: 3 });
    expect(res.status).toBe(202);
    const first = res.body.job_ids.slice(0, 3) as string[];
    for (const id of first) await stack.waitJob(u.key, id, (j) => j.status === "RUNNING" && j.progress_percent >= 20);
    await stopWorker();
    await stack.addWorker(3);
    const seen = await stack.watchBatch(u.key, res.body.batch_id, (b) => b.completed_at !== null, 40_000);
    const b = seen[seen.length - 1]!;
    expect(b).toMatchObject({ status: "COMPLETED", stop_reason: null });
    expect(b.cost).toMatchObject({ actual_cost_usd: 0.6, tokens_used: 6000 });

    const rows = await stack.batchRows(res.body.batch_id);
    expect(rows.map((r) => Number(r.costMicros))).toEqual(Array(6).fill(100_000));
    // The interrupted jobs ran again, as a new attempt; the others once.
    for (const r of rows) expect(r.attempts).toBe(first.includes(r.id) ? 2 : 1);
    const ledger = await stack.env.core.db.ledgerEntry.findMany({ where: { batchId: res.body.batch_id } });
    expect(ledger).toHaveLength(6);
    expect(ledger.reduce((a, l) => a + l.costMicros, 0n)).toBe(600_000n);
    for (const l of ledger) expect(l.attempt).toBe(rows.find((r) => r.id === l.jobId)!.attempts);
    // The owner's usage agrees with the batch.
    const stats = (await stack.http().get("/simulations/batch/stats").set("X-API-Key", u.key)).body;
    return { b, stats };
  }

  it("a killed worker's jobs are redelivered and charged once, for the attempt that ended them", async () => {
    const victim = stack.workers[0]!;
    const { stats } = await runThrough(() => victim.kill());
    expect(stats).toMatchObject({ completed_batches: 1, total_cost_usd: 0.6, total_tokens: 6000 });
  });

  it("a worker shut down gracefully hands its jobs back uncharged; they finish elsewhere", async () => {
    const leaving = stack.workers[stack.workers.length - 1]!;
    const { stats } = await runThrough(() => leaving.stop());
    expect(stats).toMatchObject({ completed_batches: 2, total_cost_usd: 1.2, total_tokens: 12_000 });
  });
});
