import { Stack, scripted } from "../support/stack.ts";

const ok = (steps = 1, step_ms = 10) => scripted({ steps, step_ms });
const micros = (usd: number) => Math.round(usd * 1e6);

/** Fail-fast, budget cap and cancellation: how a batch stops, and what it is charged. */
describe("batch stops: fail-fast, budget, cancel", () => {
  const stack = new Stack({ workers: [6] });
  let u: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    u = await stack.env.user("stopper", "enterprise");
  });
  afterAll(() => stack.stop());

  const finished = (id: string) => stack.watchBatch(u.key, id, (b) => b.completed_at !== null).then((seen) => seen[seen.length - 1]!);
  const jobsOf = async (id: string) => (await stack.http().get(`/simulations/batch/${id}/jobs`).set("X-API-Key", u.key)).body.jobs as Record<string, any>[];

  /** The batch's cost is the sum of its jobs' charges and of its ledger rows, one per job that ran. */
  async function expectCostsAgree(b: Record<string, any>) {
    const jobs = await jobsOf(b.batch_id);
    const ledger = await stack.env.core.db.ledgerEntry.findMany({ where: { batchId: b.batch_id } });
    const jobSum = jobs.reduce((a, j) => a + micros(j.cost_usd), 0);
    expect(micros(b.cost.actual_cost_usd)).toBe(jobSum);
    expect(ledger.reduce((a, l) => a + Number(l.costMicros), 0)).toBe(jobSum);
    expect(ledger.reduce((a, l) => a + Number(l.tokens), 0)).toBe(b.cost.tokens_used);
    expect(new Set(ledger.map((l) => `${l.jobId}:${l.attempt}`)).size).toBe(ledger.length);
    expect(new Set(ledger.map((l) => l.jobId)).size).toBe(ledger.length);
    return jobs;
  }

  it("fail-fast with parallel_jobs 1: the first failure cancels every job not started", async () => {
    const res = await stack.submitBatch(u.key, {
      simulations: [ok(), scripted({ steps: 3, fail_at_step: 2, step_ms: 10 }), ok(), ok(), ok()],
      parallel_jobs: 1,
      fail_fast: true,
    });
    const b = await finished(res.body.batch_id);
    const failedId = res.body.job_ids[1];
    expect(b).toMatchObject({ status: "PARTIAL", stop_reason: "FAIL_FAST" });
    expect(b.error_message).toContain(failedId);
    expect(b.error_message).toContain("scripted failure at step 2");
    expect(b.progress).toMatchObject({ completed_jobs: 1, failed_jobs: 1, cancelled_jobs: 3, pending_jobs: 0, running_jobs: 0 });
    const jobs = await expectCostsAgree(b);
    expect(jobs.map((j) => j.status)).toEqual(["COMPLETED", "FAILED", "CANCELLED", "CANCELLED", "CANCELLED"]);
    expect(jobs.slice(2).every((j) => j.started_at === null && j.cost_usd === 0 && j.attempts === 0)).toBe(true);
    expect(b.cost.actual_cost_usd).toBeCloseTo(0.02, 10);
  });

  it("fail-fast with parallel_jobs 3: running jobs are interrupted, charged for the steps they ran", async () => {
    const long = scripted({ steps: 200, step_ms: 20 });
    const res = await stack.submitBatch(u.key, {
      simulations: [long, long, scripted({ steps: 5, fail_at_step: 3, step_ms: 20 }), ok(), ok()],
      parallel_jobs: 3,
      fail_fast: true,
    });
    const started = Date.now();
    const b = await finished(res.body.batch_id);
    expect(Date.now() - started).toBeLessThan(3_000); // not the 4 s the long jobs would take
    expect(b).toMatchObject({ status: "FAILED", stop_reason: "FAIL_FAST" });
    expect(b.error_message).toContain(res.body.job_ids[2]);
    const jobs = await expectCostsAgree(b);
    expect(jobs.map((j) => j.status)).toEqual(["CANCELLED", "CANCELLED", "FAILED", "CANCELLED", "CANCELLED"]);
    for (const j of jobs.slice(0, 2)) {
      expect(j.tokens_used).toBeGreaterThan(0);
      expect(j.tokens_used).toBeLessThan(200 * 100);
      expect(j.cost_usd).toBeCloseTo((j.tokens_used / 100) * 0.01, 10);
    }
    expect(jobs.slice(3).every((j) => j.started_at === null)).toBe(true);
  });

  it("without fail-fast a failing job does not disturb the others: PARTIAL, or FAILED when none completed", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [ok(3), scripted({ steps: 2, fail_at_step: 1 }), ok(3), ok(3)], parallel_jobs: 2 });
    const b = await finished(res.body.batch_id);
    expect(b).toMatchObject({ status: "PARTIAL", stop_reason: null });
    expect(b.progress).toMatchObject({ completed_jobs: 3, failed_jobs: 1, cancelled_jobs: 0 });
    expect(b.cost.actual_cost_usd).toBeCloseTo(0.09, 10);
    await expectCostsAgree(b);
    const all = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 2, fail_at_step: 2 }), scripted({ steps: 2, fail_at_step: 2 })] });
    const f = await finished(all.body.batch_id);
    expect(f).toMatchObject({ status: "FAILED", stop_reason: null });
    expect(f.cost.actual_cost_usd).toBeCloseTo(0.02, 10);
  });

  it.each([1, 3])("budget cap with parallel_jobs %i: stops after exactly 2 jobs when the 3rd cannot fit", async (parallel) => {
    // Each job: 2 steps of $0.01, estimate $0.02; cap $0.05 fits two (0.04), never a third.
    const res = await stack.submitBatch(u.key, { simulations: Array.from({ length: 6 }, () => ok(2)), parallel_jobs: parallel, budget_cap_usd: 0.05 });
    expect(res.status).toBe(202);
    const b = await finished(res.body.batch_id);
    expect(b).toMatchObject({ status: "PARTIAL", stop_reason: "BUDGET_EXHAUSTED" });
    expect(b.progress).toMatchObject({ completed_jobs: 2, cancelled_jobs: 4 });
    expect(b.cost).toMatchObject({ actual_cost_usd: 0.04, budget_cap_usd: 0.05, budget_remaining_usd: 0.01, tokens_used: 400 });
    const jobs = await expectCostsAgree(b);
    expect(jobs.map((j) => j.status)).toEqual(["COMPLETED", "COMPLETED", "CANCELLED", "CANCELLED", "CANCELLED", "CANCELLED"]);
    expect(jobs.slice(2).every((j) => j.started_at === null)).toBe(true);
  });

  it("budget cap met exactly by the last job: COMPLETED, nothing stopped", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [ok(2), ok(2)], parallel_jobs: 1, budget_cap_usd: 0.04 });
    const b = await finished(res.body.batch_id);
    expect(b).toMatchObject({ status: "COMPLETED", stop_reason: null, error_message: null });
    expect(b.cost).toMatchObject({ actual_cost_usd: 0.04, budget_remaining_usd: 0 });
  });

  it("budget cap: a job waits for running ones that may cost less than estimated, then runs if it fits", async () => {
    // Estimates of $0.03 but real runs cost $0.01: the 2nd waits for the 1st (0.03 + 0.03 > 0.05), then fits.
    const res = await stack.submitBatch(u.key, {
      simulations: Array.from({ length: 3 }, () => scripted({ steps: 1, step_ms: 20, estimate_usd: 0.03 })),
      parallel_jobs: 3,
      budget_cap_usd: 0.05,
    });
    const b = await finished(res.body.batch_id);
    expect(b).toMatchObject({ status: "COMPLETED", stop_reason: null });
    const rows = await stack.batchRows(res.body.batch_id);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.startedAt!.getTime()).toBeGreaterThanOrEqual(rows[i - 1]!.completedAt!.getTime());
  });

  it("budget cap: when spending reaches the cap, running jobs are interrupted within one step each", async () => {
    // Estimates far below the real cost: three run at once and spend past what dispatch expected.
    const sim = scripted({ steps: 40, step_ms: 15, cost_usd_per_step: 0.01, estimate_usd: 0.001 });
    const res = await stack.submitBatch(u.key, { simulations: [sim, sim, sim, sim, sim], parallel_jobs: 3, budget_cap_usd: 0.1 });
    const b = await finished(res.body.batch_id);
    expect(b).toMatchObject({ status: "FAILED", stop_reason: "BUDGET_EXHAUSTED" });
    const jobs = await expectCostsAgree(b);
    expect(jobs.map((j) => j.status)).toEqual(["CANCELLED", "CANCELLED", "CANCELLED", "CANCELLED", "CANCELLED"]);
    expect(jobs.slice(3).every((j) => j.started_at === null)).toBe(true);
    expect(micros(b.cost.actual_cost_usd)).toBeGreaterThanOrEqual(100_000);
    expect(micros(b.cost.actual_cost_usd)).toBeLessThanOrEqual(100_000 + 3 * 10_000);
    expect(b.cost.budget_remaining_usd).toBe(0);
  });

  it("cancel with cancel_running true: CANCELLED from the response on, running jobs interrupted and charged", async () => {
    const long = scripted({ steps: 200, step_ms: 20 });
    const res = await stack.submitBatch(u.key, { simulations: [long, long, ok(), ok()], parallel_jobs: 2 });
    for (const id of res.body.job_ids.slice(0, 2)) await stack.waitJob(u.key, id, (j) => j.status === "RUNNING" && j.progress_percent > 0);
    const c = await stack.http().post(`/simulations/batch/${res.body.batch_id}/cancel`).set("X-API-Key", u.key).send({ reason: "enough" });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: "CANCELLED", stop_reason: "CANCELLED_BY_USER", cancel_reason: "enough" });
    expect(c.body.progress).toMatchObject({ pending_jobs: 0, cancelled_jobs: 2, running_jobs: 2 });
    expect(c.body.completed_at).toBeNull();
    const seen = await stack.watchBatch(u.key, res.body.batch_id, (b) => b.completed_at !== null);
    expect(seen.every((b) => b.status === "CANCELLED")).toBe(true);
    const b = seen[seen.length - 1]!;
    expect(b.progress).toMatchObject({ cancelled_jobs: 4, running_jobs: 0 });
    const jobs = await expectCostsAgree(b);
    for (const j of jobs.slice(0, 2)) {
      expect(j.status).toBe("CANCELLED");
      expect(j.tokens_used).toBeGreaterThan(0);
      expect(j.tokens_used).toBeLessThan(200 * 100);
    }
    expect(jobs.slice(2).every((j) => j.started_at === null && j.cancel_reason === "enough")).toBe(true);
    expect(new Date(b.completed_at).getTime()).toBeGreaterThanOrEqual(Math.max(...jobs.map((j) => new Date(j.completed_at).getTime())));
  });

  it("cancel with cancel_running false: running jobs finish and are accounted, the rest are cancelled at once", async () => {
    const mid = scripted({ steps: 6, step_ms: 40 });
    const res = await stack.submitBatch(u.key, { simulations: [mid, mid, ok(), ok()], parallel_jobs: 2 });
    for (const id of res.body.job_ids.slice(0, 2)) await stack.waitJob(u.key, id, (j) => j.status === "RUNNING");
    const c = await stack.http().post(`/simulations/batch/${res.body.batch_id}/cancel`).set("X-API-Key", u.key).send({ cancel_running: false });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: "CANCELLED", stop_reason: "CANCELLED_BY_USER", completed_at: null });
    expect(c.body.progress).toMatchObject({ pending_jobs: 0, cancelled_jobs: 2, running_jobs: 2 });
    const seen = await stack.watchBatch(u.key, res.body.batch_id, (b) => b.completed_at !== null);
    expect(seen.every((b) => b.status === "CANCELLED")).toBe(true);
    const b = seen[seen.length - 1]!;
    expect(b.progress).toMatchObject({ completed_jobs: 2, cancelled_jobs: 2 });
    expect(b.cost).toMatchObject({ actual_cost_usd: 0.12, tokens_used: 1200 });
    await expectCostsAgree(b);
  });

  it("cancelling one job of a batch cancels that job only; the batch goes on", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [ok(3, 20), ok(3, 20), ok(3, 20)], parallel_jobs: 1 });
    const c = await stack.http().post(`/simulations/${res.body.job_ids[2]}/cancel`).set("X-API-Key", u.key).send({});
    expect(c.body.status).toBe("CANCELLED");
    // A third or two thirds of the batch has ended now: progress_percent is the contract's formula, unrounded.
    const mid = (await stack.http().get(`/simulations/batch/${res.body.batch_id}`).set("X-API-Key", u.key)).body.progress;
    expect(mid.progress_percent).toBe(((mid.completed_jobs + mid.failed_jobs + mid.cancelled_jobs) / mid.total_jobs) * 100);
    const b = await finished(res.body.batch_id);
    expect(b).toMatchObject({ status: "PARTIAL", stop_reason: null });
    expect(b.progress).toMatchObject({ completed_jobs: 2, cancelled_jobs: 1 });
  });

  it("cancelling a PENDING batch cancels everything at once and completes it", async () => {
    const blocker = await stack.env.user("blocked", "free");
    const first = await stack.submitBatch(blocker.key, { simulations: [scripted({ steps: 100, step_ms: 20, cost_usd_per_step: 0.0001 })] });
    await stack.waitJob(blocker.key, first.body.job_ids[0], (j) => j.status === "RUNNING");
    // Free tier: concurrency 1, so this batch waits in Postgres.
    const second = await stack.submitBatch(blocker.key, { simulations: [scripted({ steps: 1, cost_usd_per_step: 0.0001 })] });
    const c = await stack.http().post(`/simulations/batch/${second.body.batch_id}/cancel`).set("X-API-Key", blocker.key).send({});
    expect(c.body).toMatchObject({ status: "CANCELLED", started_at: null });
    expect(c.body.progress).toMatchObject({ cancelled_jobs: 1, progress_percent: 100 });
    expect(c.body.completed_at).not.toBeNull();
    await stack.http().post(`/simulations/batch/${first.body.batch_id}/cancel`).set("X-API-Key", blocker.key).send({});
  });
});
