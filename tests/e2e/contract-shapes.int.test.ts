import {
  AdminUserSchema,
  ApiKeyCreatedSchema,
  BatchListSchema,
  BatchSchema,
  BatchStatsSchema,
  BatchWithJobsSchema,
  ErrorBodySchema,
  HealthSchema,
  JobListSchema,
  JobSchema,
  JobStatsSchema,
  ReadySchema,
  ServiceInfoSchema,
  SimulationResultSchema,
  TemplateListSchema,
  TemplateSchema,
  UsageAdjustmentResponseSchema,
  UsageHistorySchema,
  UsageSchema,
} from "@simbatch/contracts";
import type { Response } from "supertest";
import type { z } from "zod";
import { FINAL_JOB, scripted, Stack } from "../support/stack.ts";

/**
 * Every route once, through the in-process stack: success bodies parse with the
 * contract's response schemas (parse, not safeParse, so a failure names the
 * field), and error bodies parse as ErrorBody with X-Request-Id = request_id.
 */
describe("responses conform to the contract's schemas", () => {
  const ADMIN = "contract-admin-token-0123456789abcdef";
  const stack = new Stack({ workers: [1], adminToken: ADMIN });
  let pro: { id: string; key: string };
  let other: { id: string; key: string };
  let free: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    pro = await stack.env.user("pam", "pro");
    other = await stack.env.user("oscar", "pro");
    free = await stack.env.user("fred", "free");
  });
  afterAll(() => stack.stop());

  const get = (key: string, path: string) => stack.http().get(path).set("X-API-Key", key);
  const post = (key: string, path: string, body: object = {}) => stack.http().post(path).set("X-API-Key", key).send(body);
  const admin = () => ({
    post: (path: string, body: object) => stack.http().post(path).set("Authorization", `Bearer ${ADMIN}`).send(body),
    patch: (path: string, body: object) => stack.http().patch(path).set("Authorization", `Bearer ${ADMIN}`).send(body),
    del: (path: string) => stack.http().delete(path).set("Authorization", `Bearer ${ADMIN}`),
    get: (path: string) => stack.http().get(path).set("Authorization", `Bearer ${ADMIN}`),
  });

  /** Status first (its body explains a mismatch), then the schema. */
  function ok<S extends z.ZodType>(res: Response, status: number, schema: S): z.infer<S> {
    expect({ status: res.status, body: res.body }).toMatchObject({ status });
    expect(res.headers["x-request-id"]).toBeTruthy();
    return schema.parse(res.body);
  }

  function fails(res: Response, status: number, code: string) {
    expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { error: code } });
    const body = ErrorBodySchema.parse(res.body);
    expect(res.headers["x-request-id"]).toBe(body.request_id);
    return body;
  }

  it("serves the public routes", async () => {
    ok(await stack.http().get("/"), 200, ServiceInfoSchema);
    ok(await stack.http().get("/health"), 200, HealthSchema);
    ok(await stack.http().get("/ready"), 200, ReadySchema);
  });

  it("serves templates", async () => {
    const list = ok(await get(pro.key, "/simulations/templates"), 200, TemplateListSchema);
    expect(list.templates.length).toBe(list.total);
    ok(await get(pro.key, "/simulations/templates?category=persona"), 200, TemplateListSchema);
    ok(await get(pro.key, "/simulations/templates/showcase/board_meeting"), 200, TemplateSchema);
    ok(await get(pro.key, "/simulations/templates/test/scripted"), 200, TemplateSchema);
  });

  it("serves single simulations: create, get, list, stats, result, exports, cancel", async () => {
    const created = ok(await post(pro.key, "/simulations", scripted({ steps: 2 })), 202, JobSchema);
    ok(await get(pro.key, `/simulations/${created.job_id}`), 200, JobSchema);
    const done = JobSchema.parse(await stack.waitJob(pro.key, created.job_id, (j) => FINAL_JOB.has(j.status)));
    expect(done.status).toBe("COMPLETED");
    const result = ok(await get(pro.key, `/simulations/${done.job_id}/result`), 200, SimulationResultSchema);
    expect(Object.keys(result.narrative_exports).sort()).toEqual(["json", "markdown"]);
    const md = await get(pro.key, `/simulations/${done.job_id}/exports/markdown`);
    expect(md.status).toBe(200);
    expect(md.headers["content-type"]).toMatch(/^text\/markdown/);
    const json = await get(pro.key, `/simulations/${done.job_id}/exports/json`);
    expect(json.status).toBe(200);
    expect(json.headers["content-type"]).toMatch(/^application\/json/);

    const long = ok(await post(pro.key, "/simulations", scripted({ steps: 200, step_ms: 50 })), 202, JobSchema);
    const cancelled = ok(await post(pro.key, `/simulations/${long.job_id}/cancel`, { reason: "contract test" }), 200, JobSchema);
    expect(cancelled.cancel_reason).toBe("contract test");
    await stack.waitJob(pro.key, long.job_id, (j) => FINAL_JOB.has(j.status));

    const list = ok(await get(pro.key, "/simulations?page=1&page_size=5"), 200, JobListSchema);
    expect(list.jobs.length).toBeGreaterThan(0);
    ok(await get(pro.key, "/simulations?status=completed"), 200, JobListSchema);
    ok(await get(pro.key, "/simulations/stats"), 200, JobStatsSchema);
  });

  it("serves every batch route", async () => {
    const body = { simulations: [scripted({ steps: 1 }), scripted({ steps: 1 })], budget_cap_usd: 5, metadata: { run: "contract" } };
    const batch = ok(await post(pro.key, "/simulations/batch", body), 202, BatchSchema);
    ok(await get(pro.key, `/simulations/batch/${batch.batch_id}`), 200, BatchSchema);
    ok(await get(pro.key, `/simulations/batch/${batch.batch_id}/jobs`), 200, BatchWithJobsSchema);
    BatchSchema.parse(await stack.waitBatch(pro.key, batch.batch_id, (b) => b.status === "COMPLETED"));
    ok(await get(pro.key, `/simulations/batch/${batch.batch_id}/jobs`), 200, BatchWithJobsSchema);

    const long = ok(await post(pro.key, "/simulations/batch", { simulations: [scripted({ steps: 200, step_ms: 50 })] }), 202, BatchSchema);
    const cancelled = ok(await post(pro.key, `/simulations/batch/${long.batch_id}/cancel`, { reason: "contract test" }), 200, BatchSchema);
    expect(cancelled).toMatchObject({ status: "CANCELLED", stop_reason: "CANCELLED_BY_USER" });
    BatchSchema.parse(await stack.waitBatch(pro.key, long.batch_id, (b) => b.completed_at !== null));

    ok(await get(pro.key, "/simulations/batch?page=1&page_size=10"), 200, BatchListSchema);
    ok(await get(pro.key, "/simulations/batch?status=cancelled"), 200, BatchListSchema);
    ok(await get(pro.key, "/simulations/batch/stats"), 200, BatchStatsSchema);
  });

  it("serves the admin routes", async () => {
    const a = admin();
    ok(await a.post("/admin/users", { user_id: "ursula", tier: "basic" }), 201, AdminUserSchema);
    ok(await a.post("/admin/users", { user_id: "ursula", tier: "pro" }), 200, AdminUserSchema);
    ok(await a.patch("/admin/users/ursula", { tier: "enterprise" }), 200, AdminUserSchema);
    const key = ok(await a.post("/admin/users/ursula/api-keys", { name: "laptop" }), 201, ApiKeyCreatedSchema);
    expect((await get(key.api_key, "/simulations/stats")).status).toBe(200);
    // A past period, so the usage history below has a row to check.
    ok(
      await a.post("/admin/users/pam/usage-adjustments", { period: "2020-01", api_calls: 3, cost_usd: 0.25, reason: "backfill" }),
      201,
      UsageAdjustmentResponseSchema,
    );
    ok(await a.post("/admin/users/pam/usage-adjustments", { cost_usd: -0.01, reason: "credit" }), 201, UsageAdjustmentResponseSchema);
    const revoked = await a.del(`/admin/api-keys/${key.key_id}`);
    expect(revoked.status).toBe(204);
    expect(revoked.headers["x-request-id"]).toBeTruthy();
    fails(await get(key.api_key, "/simulations/stats"), 401, "Unauthorized");
    const metrics = await a.get("/admin/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.headers["content-type"]).toMatch(/^text\/plain/);
    expect((await a.get("/admin/operations")).status).toBe(200);
  });

  it("serves usage and its history", async () => {
    ok(await get(pro.key, "/simulations/batch/usage"), 200, UsageSchema);
    const history = ok(await get(pro.key, "/simulations/batch/usage/history?periods=12"), 200, UsageHistorySchema);
    expect(history.history.map((h) => h.period)).toContain("2020-01");
    ok(await get(free.key, "/simulations/batch/usage"), 200, UsageSchema);
  });

  it("answers errors with the error body and the request id", async () => {
    fails(await stack.http().get("/simulations"), 401, "Unauthorized");
    fails(
      await stack
        .http()
        .get("/simulations")
        .set("X-API-Key", `tp_${"0".repeat(32)}`),
      401,
      "Unauthorized",
    );
    fails(await stack.http().get("/admin/operations").set("Authorization", "Bearer wrong"), 401, "Unauthorized");
    const mine = ok(await post(pro.key, "/simulations", scripted({ steps: 1 })), 202, JobSchema);
    fails(await get(other.key, `/simulations/${mine.job_id}`), 403, "Forbidden");
    const theirs = ok(await post(other.key, "/simulations/batch", { simulations: [scripted({ steps: 1 })] }), 202, BatchSchema);
    fails(await get(pro.key, `/simulations/batch/${theirs.batch_id}`), 403, "Forbidden");
    fails(await get(pro.key, "/simulations/sim_000000000000"), 404, "NotFound");
    fails(await get(pro.key, "/simulations/batch/batch_000000000000"), 404, "NotFound");
    fails(await get(pro.key, "/simulations/templates/showcase/nope"), 404, "NotFound");
    fails(await stack.http().get("/no/such/path"), 404, "NotFound");
    fails(await stack.http().delete("/simulations"), 405, "MethodNotAllowed");
    fails(await post(pro.key, "/simulations", { description: "x".repeat(70 * 1024) }), 413, "PayloadTooLarge");
    // Size is checked before auth.
    fails(
      await stack
        .http()
        .post("/simulations")
        .send({ description: "x".repeat(70 * 1024) }),
      413,
      "PayloadTooLarge",
    );
    const tooLarge = fails(
      await post(free.key, "/simulations/batch", { simulations: Array.from({ length: 6 }, () => scripted({ steps: 1 })) }),
      400,
      "BatchTooLarge",
    );
    expect(tooLarge).toMatchObject({ tier: "free", max_batch_size: 5 });
    fails(await post(pro.key, "/simulations/batch", { simulations: [scripted({ steps: 5 })], budget_cap_usd: 0.001 }), 400, "BudgetTooLow");
    const invalid = fails(
      await post(pro.key, "/simulations/batch", { simulations: [{ template_id: "board_meeting", entity_count: 99 }] }),
      422,
      "ValidationError",
    );
    expect(invalid.detail).toEqual([expect.objectContaining({ path: "simulations.0.entity_count" })]);
    fails(await get(pro.key, "/simulations?page_size=0"), 422, "ValidationError");
    const done = await stack.waitJob(pro.key, mine.job_id, (j) => FINAL_JOB.has(j.status));
    fails(await post(pro.key, `/simulations/${done.job_id}/cancel`), 400, "InvalidState");

    // Free tier: one unfinished single job at a time.
    // Cheap steps keep the estimate under the free cost quota, so the concurrency check is what refuses.
    const first = ok(await post(free.key, "/simulations", scripted({ steps: 200, step_ms: 50, cost_usd_per_step: 0.001 })), 202, JobSchema);
    const busy = fails(await post(free.key, "/simulations", scripted({ steps: 1 })), 429, "ConcurrencyLimitExceeded");
    expect(busy).toMatchObject({ active_jobs: 1, concurrency_limit: 1 });
    ok(await post(free.key, `/simulations/${first.job_id}/cancel`), 200, JobSchema);
  });
});
