import { periodOf, secondsToNextPeriod } from "@simbatch/contracts";
import { Stack, scripted } from "../support/stack.ts";

/**
 * Limit errors and their bodies. Small limits per tier keep it fast: free for
 * admission, basic for the API-call quota, pro for the rate limit, enterprise unlimited.
 */
describe("usage limits", () => {
  const stack = new Stack({
    workers: [4],
    rateLimitEnabled: true,
    limits: {
      free: { simulations: 10, costMicros: 1_000_000, maxBatchSize: 5, ratePerMinute: 10_000 },
      basic: { apiCalls: 5, ratePerMinute: 10_000 },
      pro: { ratePerMinute: 3 },
      enterprise: {},
    },
  });
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  const cheap = (n: number) => Array.from({ length: n }, () => scripted({ steps: 1, estimate_usd: 0.01 }));
  const batch = (key: string, body: object) => stack.http().post("/simulations/batch").set("X-API-Key", key).send(body);
  const usage = (key: string) => stack.http().get("/simulations/batch/usage").set("X-API-Key", key);

  it("admits exactly the simulations left when 50 batch creates race", async () => {
    const u = await stack.env.user("racer", "free");
    const results = await Promise.all(Array.from({ length: 50 }, () => batch(u.key, { simulations: cheap(1) })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
    const refused = results.find((r) => r.status === 429)!;
    expect(refused.body).toMatchObject({ error: "SimulationQuotaExceeded", simulations_used: 10, simulations_limit: 10 });
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(await stack.env.core.db.simulationJob.count({ where: { ownerId: u.id } })).toBe(10);
    const body = (await usage(u.key)).body;
    expect(body).toMatchObject({ simulations_used: 10, simulations_remaining: 0, is_quota_exceeded: true, quota_exceeded_reason: "Simulation quota exceeded" });
  });

  it("checks batch size, then simulations, then budget, then cost", async () => {
    const u = await stack.env.user("orderly", "free");
    const tooBig = await batch(u.key, { simulations: cheap(6) });
    expect(tooBig.status).toBe(400);
    expect(tooBig.body).toMatchObject({ error: "BatchTooLarge", tier: "free", max_batch_size: 5 });

    const budget = await batch(u.key, { simulations: [scripted({ estimate_usd: 0.5 }), scripted({ estimate_usd: 0.1 })], budget_cap_usd: 0.2 });
    expect(budget.status).toBe(400);
    expect(budget.body).toMatchObject({ error: "BudgetTooLow", estimated_cost_usd: 0.6 });

    const sent = new Date();
    const cost = await batch(u.key, { simulations: [scripted({ estimate_usd: 0.7 }), scripted({ estimate_usd: 0.4 })] });
    const answered = new Date();
    expect(cost.status).toBe(429);
    expect(cost.body).toMatchObject({ error: "CostQuotaExceeded", cost_used_usd: 0, cost_limit_usd: 1 });
    // The seconds to the next period as of when the server answered (a clock second may tick during the request).
    const retryAfter = Number(cost.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThanOrEqual(secondsToNextPeriod(answered));
    expect(retryAfter).toBeLessThanOrEqual(secondsToNextPeriod(sent));
    expect(typeof cost.body.request_id).toBe("string");
    // A budget cap does not lower what the batch counts against the quota: its whole estimate (1.1 USD > 1).
    const capped = await batch(u.key, { simulations: [scripted({ estimate_usd: 0.7 }), scripted({ estimate_usd: 0.4 })], budget_cap_usd: 0.8 });
    expect(capped.status).toBe(429);
    expect(capped.body).toMatchObject({ error: "CostQuotaExceeded" });
    const dry = await stack
      .http()
      .post("/simulations/batch?dry_run=true")
      .set("X-API-Key", u.key)
      .send({ simulations: [scripted({ estimate_usd: 0.7 }), scripted({ estimate_usd: 0.4 })], budget_cap_usd: 0.8 });
    expect(dry.status).toBe(429);
    // Nothing was written by the refusals.
    expect(await stack.env.core.db.batch.count({ where: { ownerId: u.id } })).toBe(0);
  });

  it("refuses API calls at the quota with 429 QuotaExceeded, not counting them; usage routes still answer and count", async () => {
    const u = await stack.env.user("chatty", "basic");
    for (let i = 0; i < 5; i++) expect((await stack.http().get("/simulations").set("X-API-Key", u.key)).status).toBe(200);
    const refused = await stack.http().get("/simulations").set("X-API-Key", u.key);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: "QuotaExceeded", api_calls_used: 5, api_calls_limit: 5 });
    const retry = Number(refused.headers["retry-after"]);
    expect(Math.abs(retry - secondsToNextPeriod(new Date()))).toBeLessThanOrEqual(2);
    // Refusal comes before validation: a malformed body still gets 429.
    const bad = await stack.http().post("/simulations/batch").set("X-API-Key", u.key).set("Content-Type", "application/json").send("{nope");
    expect(bad.status).toBe(429);
    // Usage routes are never refused; each counts, this one included.
    const view = await usage(u.key);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({
      api_calls_used: 6,
      api_calls_limit: 5,
      api_calls_remaining: 0,
      is_quota_exceeded: true,
      quota_exceeded_reason: "API call quota exceeded",
    });
    expect((await stack.http().get("/simulations/batch/usage/history").set("X-API-Key", u.key)).status).toBe(200);
    expect((await usage(u.key)).body.api_calls_used).toBe(8);
    // Still refused elsewhere, and not counted.
    expect((await stack.http().get("/simulations").set("X-API-Key", u.key)).status).toBe(429);
    expect((await usage(u.key)).body.api_calls_used).toBe(9);
  });

  it("rate-limits per user with 429 RateLimitExceeded and RateLimit headers", async () => {
    const u = await stack.env.user("speedy", "pro");
    const other = await stack.env.user("calm", "pro");
    for (let i = 0; i < 3; i++) {
      const ok = await stack.http().get("/simulations").set("X-API-Key", u.key);
      expect(ok.status).toBe(200);
      expect(ok.headers["ratelimit-policy"]).toBe("3;w=60");
    }
    const limited = await stack.http().get("/simulations").set("X-API-Key", u.key);
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ error: "RateLimitExceeded", tier: "pro", limit: 3 });
    expect(limited.headers.ratelimit).toMatch(/^limit=3, remaining=0, reset=\d+$/);
    const retry = Number(limited.headers["retry-after"]);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    // Per user: another user of the same tier is not affected.
    expect((await stack.http().get("/simulations").set("X-API-Key", other.key)).status).toBe(200);
  });

  it("shows -1 for every unlimited enterprise limit", async () => {
    const u = await stack.env.user("bigco", "enterprise");
    const res = await batch(u.key, { simulations: cheap(3) });
    expect(res.status).toBe(202);
    const body = (await usage(u.key)).body;
    expect(body).toMatchObject({
      tier: "enterprise",
      api_calls_limit: -1,
      simulations_limit: -1,
      cost_limit_usd: -1,
      max_batch_size: 100,
      api_calls_remaining: -1,
      simulations_remaining: -1,
      cost_remaining_usd: -1,
      api_calls_used: 2,
      simulations_used: 3,
      is_quota_exceeded: false,
      quota_exceeded_reason: null,
    });
  });

  it("stops a batch's unstarted jobs with QUOTA_EXHAUSTED when charges reach the monthly cost limit", async () => {
    const u = await stack.env.user("spender", "free");
    // Most of the $1 limit is already spent this period.
    await stack.env.core.db.ledgerEntry.create({
      data: { userId: u.id, period: periodOf(new Date()), kind: "ADJUSTMENT", costMicros: 950_000n, reason: "seed" },
    });
    const job = scripted({ steps: 5, cost_usd_per_step: 0.02, estimate_usd: 0.01 });
    const res = await batch(u.key, { simulations: [job, job, job], parallel_jobs: 1 });
    expect(res.status).toBe(202);
    const done = await stack.waitBatch(u.key, res.body.batch_id, (b) => b.completed_at !== null);
    expect(done).toMatchObject({ stop_reason: "QUOTA_EXHAUSTED" });
    expect(done.progress).toMatchObject({ completed_jobs: 1, cancelled_jobs: 2 });
    const view = (await usage(u.key)).body;
    expect(view).toMatchObject({ cost_used_usd: 1.05, simulations_used: 1, is_quota_exceeded: true, quota_exceeded_reason: "Cost quota exceeded" });
  });

  it("starts nothing more for an owner at the cost limit: a waiting batch stops with QUOTA_EXHAUSTED", async () => {
    const u = await stack.env.user("overspender", "free");
    await stack.env.core.db.ledgerEntry.create({
      data: { userId: u.id, period: periodOf(new Date()), kind: "ADJUSTMENT", costMicros: 950_000n, reason: "seed" },
    });
    // A single job that costs more than estimated takes the user's only slot (free: concurrency 1)...
    const single = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", u.key)
      .send(scripted({ steps: 4, step_ms: 30, cost_usd_per_step: 0.02, estimate_usd: 0.001 }));
    expect(single.status).toBe(202);
    await stack.waitJob(u.key, single.body.job_id, (j) => j.status === "RUNNING");
    // ...so this batch's job waits; once the single job's charge crosses the limit it must never start.
    const res = await batch(u.key, { simulations: [scripted({ steps: 1, estimate_usd: 0.001 })] });
    expect(res.status).toBe(202);
    const done = await stack.waitBatch(u.key, res.body.batch_id, (b) => b.completed_at !== null);
    expect(done).toMatchObject({ status: "FAILED", stop_reason: "QUOTA_EXHAUSTED" });
    expect(done.progress).toMatchObject({ cancelled_jobs: 1, completed_jobs: 0 });
    const row = await stack.env.core.db.simulationJob.findFirstOrThrow({ where: { batchId: res.body.batch_id } });
    expect(row.startedAt).toBeNull();
  });
});
