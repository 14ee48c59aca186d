import { Stack, scripted } from "../support/stack.ts";

/**
 * A worker dies or shuts down mid-batch: BullMQ redelivers its jobs (short lock so
 * stalled jobs come back quickly), another worker runs them. Every attempt's
 * reported spending is charged once (docs/reliability.md: a provider bills an
 * attempt cut short): the superseded attempt's last reported spending when the
 * new attempt claims the job, the ending attempt's spending when it ends. Ledger,
 * job costs, batch cost and usage agree.
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
    const rows = await stack.batchRows(res.body.batch_id);
    // The interrupted jobs ran again, as a new attempt; the others once.
    for (const r of rows) expect(r.attempts).toBe(first.includes(r.id) ? 2 : 1);
    const ledger = await stack.env.core.db.ledgerEntry.findMany({ where: { batchId: res.body.batch_id } });
    // One charge per attempt: 6 ending attempts plus the 3 superseded ones.
    expect(ledger).toHaveLength(9);
    for (const r of rows) {
      const charges = ledger.filter((l) => l.jobId === r.id).sort((a, c) => a.attempt! - c.attempt!);
      expect(charges.map((l) => l.attempt)).toEqual(first.includes(r.id) ? [1, 2] : [1]);
      // The ending attempt ran all 10 steps; a superseded one had reported at least its first 2 (progress ≥ 20%).
      expect(charges[charges.length - 1]!.costMicros).toBe(100_000n);
      if (charges.length === 2) {
        expect(charges[0]!.costMicros).toBeGreaterThanOrEqual(20_000n);
        expect(charges[0]!.costMicros).toBeLessThanOrEqual(100_000n);
      }
      // The job's cost is the sum over its attempts.
      expect(r.costMicros).toBe(charges.reduce((a, l) => a + l.costMicros, 0n));
      expect(r.carriedCostMicros).toBe(charges.length === 2 ? charges[0]!.costMicros : 0n);
    }
    const total = ledger.reduce((a, l) => a + l.costMicros, 0n);
    const tokens = ledger.reduce((a, l) => a + l.tokens, 0n);
    expect(total).toBe(rows.reduce((a, r) => a + r.costMicros, 0n));
    expect(total).toBeGreaterThan(600_000n);
    expect(b.cost).toMatchObject({ actual_cost_usd: Number(total) / 1e6, tokens_used: Number(tokens) });
    // The owner's usage agrees with the batch.
    const stats = (await stack.http().get("/simulations/batch/stats").set("X-API-Key", u.key)).body;
    return { b, stats, total: Number(total) / 1e6, tokens: Number(tokens) };
  }

  let before = { cost: 0, tokens: 0 };

  it("a killed worker's jobs are redelivered; each attempt's reported spending is charged once", async () => {
    const victim = stack.workers[0]!;
    const { stats, total, tokens } = await runThrough(() => victim.kill());
    expect(stats).toMatchObject({ completed_batches: 1, total_tokens: tokens });
    expect(stats.total_cost_usd).toBeCloseTo(total, 9);
    before = { cost: total, tokens };
  });

  it("a worker shut down gracefully hands its jobs back; they finish elsewhere, the cut attempts charged what they reported", async () => {
    const leaving = stack.workers[stack.workers.length - 1]!;
    const { stats, total, tokens } = await runThrough(() => leaving.stop());
    expect(stats).toMatchObject({ completed_batches: 2, total_tokens: before.tokens + tokens });
    expect(stats.total_cost_usd).toBeCloseTo(before.cost + total, 9);
  });
});
