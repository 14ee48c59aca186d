import { Stack, scripted } from "../support/stack.ts";

/** The Batch API's routes, validation, atomic admission and stats (contract: Batches). */
describe("batch API routes", () => {
  const stack = new Stack({ workers: [4] });
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };
  let frank: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    alice = await stack.env.user("alice", "pro");
    bob = await stack.env.user("bob", "pro");
    frank = await stack.env.user("frank", "free");
  });
  afterAll(() => stack.stop());

  const get = (key: string, path: string) => stack.http().get(path).set("X-API-Key", key);
  const counts = async () => ({ batches: await stack.env.core.db.batch.count(), jobs: await stack.env.core.db.simulationJob.count() });

  it("creates a batch (202) holding every job id, with the contract's defaults and every field present", async () => {
    const res = await stack.submitBatch(alice.key, { simulations: [scripted({ steps: 1 }), scripted({ steps: 2 }), { template_id: "board_meeting" }] });
    expect(res.status).toBe(202);
    const b = res.body;
    expect(b.batch_id).toMatch(/^batch_[0-9a-f]{12}$/);
    expect(b).toMatchObject({
      status: "PENDING",
      priority: 50,
      fail_fast: false,
      parallel_jobs: 3,
      started_at: null,
      completed_at: null,
      stop_reason: null,
      error_message: null,
      cancel_reason: null,
      owner_id: "alice",
      metadata: null,
    });
    expect(Object.keys(b).sort()).toEqual([
      "batch_id",
      "cancel_reason",
      "completed_at",
      "cost",
      "created_at",
      "error_message",
      "eta_seconds",
      "fail_fast",
      "job_ids",
      "metadata",
      "owner_id",
      "parallel_jobs",
      "paused",
      "paused_at",
      "priority",
      "progress",
      "projected_cost_usd",
      "started_at",
      "status",
      "stop_reason",
      "webhook_url",
    ]);
    expect(b.created_at).toMatch(/Z$/);
    expect(b.progress.total_jobs).toBe(3);
    expect(b.cost).toEqual({ estimated_cost_usd: 0.08, actual_cost_usd: 0, budget_cap_usd: null, budget_remaining_usd: null, tokens_used: 0 });
    expect(b.job_ids).toHaveLength(3);
    for (const id of b.job_ids) expect(id).toMatch(/^sim_[0-9a-f]{12}$/);

    const rows = await stack.batchRows(b.batch_id);
    expect(rows.map((r) => r.id)).toEqual(b.job_ids);
    const withJobs = await get(alice.key, `/simulations/batch/${b.batch_id}/jobs`);
    expect(withJobs.status).toBe(200);
    expect(withJobs.body.batch.batch_id).toBe(b.batch_id);
    expect(withJobs.body.jobs.map((j: { job_id: string }) => j.job_id)).toEqual(b.job_ids);
    expect(withJobs.body.jobs[2]).toMatchObject({ batch_id: b.batch_id, template_id: "showcase/board_meeting", entity_count: 5 });
    const done = await stack.waitBatch(alice.key, b.batch_id, (x) => x.status === "COMPLETED");
    expect(done.cost.actual_cost_usd).toBeGreaterThan(0);
  });

  it("accepts priority words and null defaults, and refuses wrong types and out-of-range values with 422", async () => {
    const sims = [scripted({ steps: 1 })];
    const high = await stack.submitBatch(alice.key, { simulations: sims, priority: "HIGH", parallel_jobs: null, fail_fast: null, budget_cap_usd: null });
    expect(high.status).toBe(202);
    expect(high.body).toMatchObject({ priority: 75, parallel_jobs: 3, fail_fast: false });
    // A null config.seed is no seed (a run that is not reproducible), as if absent; a wrong one is still refused.
    expect((await stack.submitBatch(alice.key, { simulations: [{ template_id: "board_meeting", config: { seed: null } }] })).status).toBe(202);
    expect((await stack.submitBatch(alice.key, { simulations: [{ template_id: "board_meeting", config: { seed: "7" } }] })).status).toBe(422);
    expect((await stack.submitBatch(alice.key, { simulations: sims, priority: "low" })).body.priority).toBe(25);
    expect((await stack.submitBatch(alice.key, { simulations: sims, priority: "normal" })).body.priority).toBe(50);
    const bad: [object, string][] = [
      [{ simulations: [] }, "simulations"],
      [{ simulations: Array.from({ length: 101 }, () => scripted({})) }, "simulations"],
      [{ simulations: "nope" }, "simulations"],
      [{}, "simulations"],
      [{ simulations: sims, parallel_jobs: 0 }, "parallel_jobs"],
      [{ simulations: sims, parallel_jobs: 101 }, "parallel_jobs"],
      [{ simulations: sims, parallel_jobs: "5" }, "parallel_jobs"],
      [{ simulations: sims, parallel_jobs: 2.5 }, "parallel_jobs"],
      [{ simulations: sims, fail_fast: "yes" }, "fail_fast"],
      [{ simulations: sims, budget_cap_usd: 0 }, "budget_cap_usd"],
      // Below one micro-dollar: would be stored as a cap of 0.
      [{ simulations: sims, budget_cap_usd: 0.0000001 }, "budget_cap_usd"],
      [{ simulations: sims, budget_cap_usd: 1_000_001 }, "budget_cap_usd"],
      [{ simulations: sims, priority: 101 }, "priority"],
      [{ simulations: sims, priority: -1 }, "priority"],
      [{ simulations: sims, priority: "urgent" }, "priority"],
      [{ simulations: sims, metadata: { big: "x".repeat(17 * 1024) } }, "metadata"],
    ];
    const before = await counts();
    for (const [body, path] of bad) {
      const res = await stack.submitBatch(alice.key, body);
      expect({ body, status: res.status, error: res.body.error }).toEqual({ body, status: 422, error: "ValidationError" });
      expect(res.body.detail.map((d: { path: string }) => d.path)).toContain(path);
    }
    expect(await counts()).toEqual(before);
  });

  it("writes nothing when one simulation is invalid, and names its index in the 422 path", async () => {
    const before = await counts();
    const res = await stack.submitBatch(alice.key, {
      simulations: [{ template_id: "board_meeting" }, { template_id: "board_meeting", entity_count: 50 }, { template_id: "nope" }, scripted({ steps: 0 })],
    });
    expect(res.status).toBe(422);
    expect(res.body.detail.map((d: { path: string }) => d.path)).toEqual([
      "simulations.1.entity_count",
      "simulations.2.template_id",
      "simulations.3.config.steps",
    ]);
    expect(await counts()).toEqual(before);
  });

  it("writes nothing when a limit refuses the batch: BatchTooLarge, BudgetTooLow", async () => {
    const before = await counts();
    const big = await stack.submitBatch(frank.key, { simulations: Array.from({ length: 6 }, () => scripted({})) });
    expect(big.status).toBe(400);
    expect(big.body).toMatchObject({ error: "BatchTooLarge", tier: "free", max_batch_size: 5 });
    const low = await stack.submitBatch(alice.key, { simulations: [scripted({ estimate_usd: 0.3 }), scripted({ estimate_usd: 0.01 })], budget_cap_usd: 0.2 });
    expect(low.status).toBe(400);
    expect(low.body).toMatchObject({ error: "BudgetTooLow", estimated_cost_usd: 0.31 });
    expect(await counts()).toEqual(before);
    // Only the first job's estimate decides: later jobs above the cap are admitted (and stopped by the budget rule).
    const ok = await stack.submitBatch(alice.key, {
      simulations: [scripted({ estimate_usd: 0.1, steps: 1 }), scripted({ estimate_usd: 0.3 })],
      budget_cap_usd: 0.2,
    });
    expect(ok.status).toBe(202);
    const done = await stack.waitBatch(alice.key, ok.body.batch_id, (b) => b.completed_at !== null);
    expect(done).toMatchObject({ status: "PARTIAL", stop_reason: "BUDGET_EXHAUSTED" });
    expect(done.progress).toMatchObject({ completed_jobs: 1, cancelled_jobs: 1 });
  });

  it("writes nothing when the database fails half way through the admission", async () => {
    const db = stack.env.core.db;
    await db.$executeRawUnsafe(`
      CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN
        IF NEW.metadata->>'boom' = 'yes' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW;
      END $$ LANGUAGE plpgsql`);
    await db.$executeRawUnsafe(`CREATE TRIGGER boom BEFORE INSERT ON simulation_jobs FOR EACH ROW EXECUTE FUNCTION boom()`);
    try {
      const before = await counts();
      const res = await stack.submitBatch(alice.key, { simulations: [scripted({}), { ...scripted({}), metadata: { boom: "yes" } }] });
      expect(res.status).toBe(500);
      expect(res.body.error).toBe("InternalError");
      expect(res.body.message).not.toContain("injected");
      expect(await counts()).toEqual(before);
    } finally {
      await db.$executeRawUnsafe(`DROP TRIGGER boom ON simulation_jobs`);
      await db.$executeRawUnsafe(`DROP FUNCTION boom()`);
    }
  });

  it("answers 404 for unknown or malformed ids and 403 for another user's batch", async () => {
    const own = await stack.submitBatch(alice.key, { simulations: [scripted({})] });
    for (const path of [`/simulations/batch/${own.body.batch_id}`, `/simulations/batch/${own.body.batch_id}/jobs`]) {
      const other = await get(bob.key, path);
      expect(other.status).toBe(403);
      expect(other.body.error).toBe("Forbidden");
    }
    const cancel = await stack.http().post(`/simulations/batch/${own.body.batch_id}/cancel`).set("X-API-Key", bob.key).send({});
    expect(cancel.status).toBe(403);
    expect((await get(alice.key, "/simulations/batch/batch_000000000000")).status).toBe(404);
    expect((await get(alice.key, "/simulations/batch/batch_000000000000/jobs")).status).toBe(404);
    expect((await get(alice.key, "/simulations/batch/not-an-id")).status).toBe(404);
    expect((await stack.http().post("/simulations/batch/batch_000000000000/cancel").set("X-API-Key", alice.key).send({})).status).toBe(404);
    expect((await stack.http().get(`/simulations/batch/${own.body.batch_id}`)).status).toBe(401);
    expect((await stack.http().delete(`/simulations/batch/${own.body.batch_id}`).set("X-API-Key", alice.key)).status).toBe(405);
  });

  it("lists batches newest first with status filter and paging", async () => {
    const carol = await stack.env.user("carol", "pro");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await stack.submitBatch(carol.key, { simulations: [scripted({ steps: 1 })] })).body.batch_id);
    for (const id of ids) await stack.waitBatch(carol.key, id, (b) => b.status === "COMPLETED");
    const slow = await stack.submitBatch(carol.key, { simulations: [scripted({ steps: 100, step_ms: 20 })] });
    ids.push(slow.body.batch_id);
    const all = await get(carol.key, "/simulations/batch");
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ total: 6, page: 1, page_size: 20 });
    expect(all.body.batches.map((b: { batch_id: string }) => b.batch_id)).toEqual([...ids].reverse());
    const page2 = await get(carol.key, "/simulations/batch?page=2&page_size=4");
    expect(page2.body).toMatchObject({ total: 6, page: 2, page_size: 4 });
    expect(page2.body.batches.map((b: { batch_id: string }) => b.batch_id)).toEqual([ids[1], ids[0]]);
    const completed = await get(carol.key, "/simulations/batch?status=completed&page_size=100");
    expect(completed.body.total).toBe(5);
    expect(completed.body.batches.every((b: { status: string }) => b.status === "COMPLETED")).toBe(true);
    expect((await get(carol.key, "/simulations/batch?status=&page=")).body.total).toBe(6);
    expect((await get(carol.key, "/simulations/batch?status=FAILED")).body).toMatchObject({ total: 0, batches: [] });
    for (const q of ["status=DONE", "page=0", "page_size=0", "page_size=101", "page=x", "page_size=2.5"]) {
      const res = await get(carol.key, `/simulations/batch?${q}`);
      expect({ q, status: res.status }).toEqual({ q, status: 422 });
    }
    await stack.http().post(`/simulations/batch/${slow.body.batch_id}/cancel`).set("X-API-Key", carol.key).send({});
    // Another user's batches never show.
    expect((await get(alice.key, "/simulations/batch?page_size=100")).body.batches.some((b: { owner_id: string }) => b.owner_id !== "alice")).toBe(false);
  });

  it("refuses to cancel a finished or cancelled batch with 400 InvalidState naming its status", async () => {
    const res = await stack.submitBatch(alice.key, { simulations: [scripted({ steps: 1 })] });
    await stack.waitBatch(alice.key, res.body.batch_id, (b) => b.status === "COMPLETED");
    const cancel = (id: string, body: object = {}) => stack.http().post(`/simulations/batch/${id}/cancel`).set("X-API-Key", alice.key).send(body);
    const finished = await cancel(res.body.batch_id);
    expect(finished.status).toBe(400);
    expect(finished.body.error).toBe("InvalidState");
    expect(finished.body.message).toContain("COMPLETED");
    const slow = await stack.submitBatch(alice.key, { simulations: [scripted({ steps: 100, step_ms: 20 })] });
    expect((await cancel(slow.body.batch_id, { cancel_running: "yes" })).status).toBe(422);
    expect((await cancel(slow.body.batch_id, { reason: "x".repeat(501) })).status).toBe(422);
    const first = await cancel(slow.body.batch_id, { reason: "not needed" });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: "CANCELLED", stop_reason: "CANCELLED_BY_USER", cancel_reason: "not needed" });
    const again = await cancel(slow.body.batch_id);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("InvalidState");
    expect(again.body.message).toContain("CANCELLED");
  });

  it("runs the seed page's example batch as written to COMPLETED", async () => {
    const res = await stack.submitBatch(alice.key, {
      simulations: [{ template_id: "board_meeting" }, { template_id: "crisis_response" }],
      parallel_jobs: 2,
      budget_cap_usd: 1.0,
      priority: 50,
      metadata: { project: "q4-planning", team: "strategy" },
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ parallel_jobs: 2, priority: 50, metadata: { project: "q4-planning", team: "strategy" } });
    expect(res.body.cost).toMatchObject({ estimated_cost_usd: 0.1, budget_cap_usd: 1, budget_remaining_usd: 1 });
    const done = await stack.waitBatch(alice.key, res.body.batch_id, (b) => b.completed_at !== null);
    expect(done).toMatchObject({ status: "COMPLETED", stop_reason: null });
    expect(done.progress).toMatchObject({ total_jobs: 2, completed_jobs: 2, progress_percent: 100 });
    const jobs = (await get(alice.key, `/simulations/batch/${res.body.batch_id}/jobs`)).body.jobs;
    expect(jobs.map((j: { template_id: string }) => j.template_id)).toEqual(["showcase/board_meeting", "showcase/crisis_response"]);
    const sum = jobs.reduce((a: number, j: { cost_usd: number }) => a + Math.round(j.cost_usd * 1e6), 0);
    expect(Math.round(done.cost.actual_cost_usd * 1e6)).toBe(sum);
    expect(done.cost.budget_remaining_usd).toBeCloseTo(1 - done.cost.actual_cost_usd, 6);
  });

  it("computes stats in SQL, correct over thousands of batches", async () => {
    const dave = await stack.env.user("dave", "pro");
    const statuses = ["PENDING", "RUNNING", "COMPLETED", "PARTIAL", "FAILED", "CANCELLED"];
    // 3,000 batches: status i % 6, total_jobs 1 + i % 7, finished ones lasting (i % 10) seconds.
    await stack.env.core.db.$executeRawUnsafe(`
      INSERT INTO batches (id, owner_id, status, priority, fail_fast, parallel_jobs, estimated_cost_micros, total_jobs, created_at, started_at, completed_at)
      SELECT 'batch_' || lpad(to_hex(i), 12, '0'), 'dave', (ARRAY['${statuses.join("','")}'])[1 + i % 6]::"BatchStatus", 50, false, 3, 0, 1 + i % 7,
        now(), CASE WHEN i % 6 >= 1 THEN now() - interval '1 hour' END,
        CASE WHEN i % 6 >= 2 THEN now() - interval '1 hour' + (i % 10) * interval '1 second' END
      FROM generate_series(1, 3000) AS i`);
    // Charged jobs on the first 10 batches: $0.25 and 40 tokens each; a running job's spend is not yet charged.
    await stack.env.core.db.$executeRawUnsafe(`
      INSERT INTO simulation_jobs (id, owner_id, batch_id, batch_index, priority, entity_count, timepoint_count, temporal_mode, config, export_formats,
        estimated_cost_micros, cost_micros, tokens_used, status, admitted_period)
      SELECT 'sim_' || lpad(to_hex(i), 12, '0'), 'dave', 'batch_' || lpad(to_hex(i), 12, '0'), 0, 50, 1, 1, 'FORWARD', '{}', '{json}',
        0, 250000, 40, CASE WHEN i = 1 THEN 'RUNNING' ELSE 'COMPLETED' END::"JobStatus", to_char(now(), 'YYYY-MM')
      FROM generate_series(1, 10) AS i`);
    let jobs = 0;
    let durations = 0;
    let finished = 0;
    for (let i = 1; i <= 3000; i++) {
      jobs += 1 + (i % 7);
      if (i % 6 >= 2) {
        durations += i % 10;
        finished++;
      }
    }
    const res = await get(dave.key, "/simulations/batch/stats");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      total_batches: 3000,
      pending_batches: 500,
      running_batches: 500,
      completed_batches: 500,
      partial_batches: 500,
      failed_batches: 500,
      cancelled_batches: 500,
      total_jobs: jobs,
      total_cost_usd: 2.25,
      total_tokens: 360,
      avg_jobs_per_batch: jobs / 3000,
      avg_duration_seconds: Math.round((durations / finished) * 1000) / 1000,
    });
    const page = await get(dave.key, "/simulations/batch?status=partial&page=3&page_size=100");
    expect(page.body).toMatchObject({ total: 500, page: 3, page_size: 100 });
    expect(page.body.batches).toHaveLength(100);
    // Stats are per user: another user's batches are not counted.
    const empty = await get(frank.key, "/simulations/batch/stats");
    expect(empty.body).toMatchObject({ total_batches: 0, total_jobs: 0, total_cost_usd: 0, avg_jobs_per_batch: 0, avg_duration_seconds: null });
  });
});
