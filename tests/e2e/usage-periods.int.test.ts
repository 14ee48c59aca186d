import { periodOf } from "@simbatch/contracts";
import { waitFor } from "@simbatch/testing";
import type request from "supertest";
import { FINAL_JOB, Stack, scripted } from "../support/stack.ts";

/**
 * Periods, history, adjustments and settlement. The API reads an injected clock;
 * workers stamp their events with the wall clock, so a job admitted while the
 * clock sits in last month and finished now is exactly "started in one month,
 * finished in the next".
 */
describe("usage periods, history and adjustments", () => {
  let fixed: Date | null = null;
  const stack = new Stack({
    workers: [4],
    adminToken: "test-admin-token-0123456789abcdef0123",
    clock: { now: () => fixed ?? new Date() },
    limits: { basic: { apiCalls: 5 } },
  });
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());
  afterEach(() => {
    fixed = null;
  });

  const usage = (key: string) => stack.http().get("/simulations/batch/usage").set("X-API-Key", key);
  const history = (key: string, q = "") => stack.http().get(`/simulations/batch/usage/history${q}`).set("X-API-Key", key);
  const admin = (r: request.Test) => r.set("Authorization", "Bearer test-admin-token-0123456789abcdef0123");
  const adjust = (userId: string, body: object) => admin(stack.http().post(`/admin/users/${userId}/usage-adjustments`)).send(body);
  const db = () => stack.env.core.db;

  it("moves usage to the new month at rollover and charges a job to the month it finished in, once", async () => {
    const u = await stack.env.user("mover", "pro");
    const now = new Date();
    const thisPeriod = periodOf(now);
    fixed = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) - 2_000);
    const lastPeriod = periodOf(fixed);
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", u.key)
      .send(scripted({ steps: 3, cost_usd_per_step: 0.01 }));
    expect(res.status).toBe(202);
    await stack.waitJob(u.key, res.body.job_id, (j) => j.status === "COMPLETED");

    const before = (await usage(u.key)).body;
    expect(before).toMatchObject({ period: lastPeriod, days_remaining: 0, simulations_used: 1, cost_used_usd: 0, tokens_used: 0 });
    const callsLastMonth = before.api_calls_used;
    expect(callsLastMonth).toBeGreaterThanOrEqual(2);

    fixed = null; // midnight UTC on the 1st has passed
    for (let i = 0; i < 2; i++) expect((await stack.http().get("/simulations").set("X-API-Key", u.key)).status).toBe(200);
    const after = (await usage(u.key)).body;
    expect(after).toMatchObject({ period: thisPeriod, api_calls_used: 3, simulations_used: 0, cost_used_usd: 0.03, tokens_used: 300 });
    const charges = await db().ledgerEntry.findMany({ where: { jobId: res.body.job_id } });
    expect(charges.map((c) => [c.period, Number(c.costMicros)])).toEqual([[thisPeriod, 30_000]]);
    const h = (await history(u.key)).body;
    expect(h.current.period).toBe(thisPeriod);
    expect(h.history).toEqual([
      { period: lastPeriod, api_calls: callsLastMonth, simulations_run: 1, simulations_completed: 0, simulations_failed: 0, cost_usd: 0, tokens_used: 0 },
    ]);
  });

  it("lists past periods with usage, newest first, up to `periods`, and validates the parameter", async () => {
    const u = await stack.env.user("veteran", "pro");
    await db().usagePeriod.create({ data: { userId: u.id, period: "2024-01", apiCalls: 7n } });
    await db().usagePeriod.create({ data: { userId: u.id, period: "2024-02", apiCalls: 0n } });
    // An adjustment carrying cost: a CHARGE row must name its job and attempt (ledger_entries_charge_check).
    await db().ledgerEntry.create({ data: { userId: u.id, period: "2024-03", kind: "ADJUSTMENT", costMicros: 1_500_000n, tokens: 42n, reason: "seed" } });
    await db().ledgerEntry.create({ data: { userId: u.id, period: "2024-05", kind: "ADJUSTMENT", simulations: 3, reason: "seed" } });
    const all = (await history(u.key, "?periods=24")).body.history;
    expect(all.map((r: { period: string }) => r.period)).toEqual(["2024-05", "2024-03", "2024-01"]);
    expect(all[1]).toEqual({
      period: "2024-03",
      api_calls: 0,
      simulations_run: 0,
      simulations_completed: 0,
      simulations_failed: 0,
      cost_usd: 1.5,
      tokens_used: 42,
    });
    expect(all[2]).toMatchObject({ period: "2024-01", api_calls: 7 });
    expect((await history(u.key, "?periods=2")).body.history.map((r: { period: string }) => r.period)).toEqual(["2024-05", "2024-03"]);
    expect((await history(u.key, "?periods=")).status).toBe(200);
    for (const bad of ["0", "25", "abc", "1.5"]) {
      const r = await history(u.key, `?periods=${bad}`);
      expect(r.status).toBe(422);
      expect(r.body.detail[0].path).toBe("periods");
    }
  });

  it("records operator adjustments in the ledger, usage, history and the live API-call quota", async () => {
    const u = await stack.env.user("adjusted", "basic");
    expect((await adjust("nobody", { api_calls: 1, reason: "x" })).status).toBe(404);
    expect((await adjust(u.id, { api_calls: 1 })).status).toBe(422);
    expect((await adjust(u.id, { api_calls: 0, reason: "nothing" })).status).toBe(422);
    expect((await adjust(u.id, { cost_usd: 0.0000001, reason: "dust" })).status).toBe(422);
    expect((await adjust(u.id, { api_calls: "3", reason: "string" })).status).toBe(422);
    expect((await adjust(u.id, { period: "2024-13", tokens: 1, reason: "bad period" })).status).toBe(422);
    expect((await admin(stack.http().post("/admin/users/adjusted/usage-adjustments")).set("Authorization", "Bearer wrong").send({})).status).toBe(401);

    expect((await stack.http().get("/simulations").set("X-API-Key", u.key)).status).toBe(200);
    const created = await adjust(u.id, { api_calls: 4, simulations: 2, cost_usd: 0.25, tokens: 100, reason: "goodwill" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      user_id: u.id,
      period: periodOf(new Date()),
      api_calls: 4,
      simulations: 2,
      cost_usd: 0.25,
      tokens: 100,
      reason: "goodwill",
    });
    expect(created.body.adjustment_id).toMatch(/^adj_\d+$/);
    expect(new Date(created.body.created_at).toISOString()).toBe(created.body.created_at);
    expect((await usage(u.key)).body).toMatchObject({
      api_calls_used: 6,
      simulations_used: 2,
      cost_used_usd: 0.25,
      tokens_used: 100,
      quota_exceeded_reason: "API call quota exceeded",
    });
    expect((await stack.http().get("/simulations").set("X-API-Key", u.key)).status).toBe(429);

    expect((await adjust(u.id, { api_calls: -2, reason: "credit back" })).status).toBe(201);
    expect((await stack.http().get("/simulations").set("X-API-Key", u.key)).status).toBe(200);
    expect((await adjust(u.id, { period: "2024-06", simulations: 1, cost_usd: -0.5, reason: "old" })).status).toBe(201);
    const past = (await history(u.key)).body.history;
    expect(past).toEqual([
      { period: "2024-06", api_calls: 0, simulations_run: 1, simulations_completed: 0, simulations_failed: 0, cost_usd: -0.5, tokens_used: 0 },
    ]);
    const rows = await db().ledgerEntry.count({ where: { userId: u.id, kind: "ADJUSTMENT" } });
    expect(rows).toBe(3);
  });

  it("settles usage to the ledger after a mixed batch and gives back simulations that never ran", async () => {
    const u = await stack.env.user("mixer", "pro");
    const long = scripted({ steps: 400, step_ms: 25, cost_usd_per_step: 0.001 });
    const res = await stack
      .http()
      .post("/simulations/batch")
      .set("X-API-Key", u.key)
      .send({
        parallel_jobs: 2,
        simulations: [scripted({ steps: 2, cost_usd_per_step: 0.01 }), scripted({ steps: 3, fail_at_step: 2, cost_usd_per_step: 0.02 }), long, long, long],
      });
    expect(res.status).toBe(202);
    const id = res.body.batch_id;
    await stack.waitBatch(u.key, id, (b) => b.progress.running_jobs === 2 && b.progress.completed_jobs + b.progress.failed_jobs === 2);
    await waitFor(async () => (await db().simulationJob.count({ where: { batchId: id, progressPercent: { gt: 0 }, status: "RUNNING" } })) === 2, {
      what: "long jobs progressing",
    });
    expect((await stack.http().post(`/simulations/batch/${id}/cancel`).set("X-API-Key", u.key).send({})).status).toBe(200);
    const done = await stack.waitBatch(u.key, id, (b) => b.completed_at !== null);
    expect(done.progress).toMatchObject({ completed_jobs: 1, failed_jobs: 1, cancelled_jobs: 3 });

    const jobs = (await stack.http().get(`/simulations/batch/${id}/jobs`).set("X-API-Key", u.key)).body.jobs as {
      status: string;
      cost_usd: number;
      started_at: string | null;
    }[];
    expect(jobs.every((j) => FINAL_JOB.has(j.status))).toBe(true);
    const ledger = await db().ledgerEntry.aggregate({ where: { userId: u.id }, _sum: { costMicros: true, tokens: true } });
    const view = (await usage(u.key)).body;
    expect(view.cost_used_usd * 1e6).toBeCloseTo(Number(ledger._sum.costMicros), 6);
    expect(view.tokens_used).toBe(Number(ledger._sum.tokens));
    expect(Math.round(view.cost_used_usd * 1e6)).toBe(Math.round(jobs.reduce((a, j) => a + j.cost_usd, 0) * 1e6));
    expect(view.cost_used_usd).toBeGreaterThan(0.04);
    // The job that never started gave its reservation back.
    expect(jobs.filter((j) => j.started_at === null)).toHaveLength(1);
    expect(view.simulations_used).toBe(4);
  });
});
