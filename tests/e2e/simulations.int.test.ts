import { Stack, scripted, FINAL_JOB } from "../support/stack.ts";
import { waitFor } from "@simbatch/testing";

describe("single simulations end to end", () => {
  const stack = new Stack({ workers: [1], adminToken: "test-admin-token-0123456789abcdef0123" });
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    alice = await stack.env.user("alice", "pro");
    bob = await stack.env.user("bob", "free");
  });
  afterAll(() => stack.stop());

  const submit = (key: string, body: unknown) =>
    stack
      .http()
      .post("/simulations")
      .set("X-API-Key", key)
      .send(body as object);

  it("runs a board_meeting to COMPLETED with a result and a cost", async () => {
    const res = await submit(alice.key, { template_id: "board_meeting" });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: "PENDING", template_id: "showcase/board_meeting", entity_count: 5, timepoint_count: 3, batch_id: null });
    expect(res.body.job_id).toMatch(/^sim_[0-9a-f]{12}$/);
    expect(res.headers["x-request-id"]).toBeTruthy();
    const job = await stack.waitJob(alice.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job.status).toBe("COMPLETED");
    expect(job.cost_usd).toBeGreaterThan(0);
    expect(job.tokens_used).toBeGreaterThan(0);
    expect(job.progress_percent).toBe(100);
    const result = await stack.http().get(`/simulations/${job.job_id}/result`).set("X-API-Key", alice.key);
    expect(result.status).toBe(200);
    expect(result.body.entities.length).toBe(5);
    expect(result.body.timepoints.length).toBeGreaterThan(0);
    expect(result.body.narrative_exports).toEqual({
      json: `/simulations/${job.job_id}/exports/json`,
      markdown: `/simulations/${job.job_id}/exports/markdown`,
    });
    const md = await stack.http().get(`/simulations/${job.job_id}/exports/markdown`).set("X-API-Key", alice.key);
    expect(md.status).toBe(200);
    expect(md.headers["content-type"]).toMatch(/^text\/markdown/);
    // Rendered again on each download: the same bytes and ETag every time.
    const mdAgain = await stack.http().get(`/simulations/${job.job_id}/exports/markdown`).set("X-API-Key", alice.key);
    expect(mdAgain.text).toBe(md.text);
    expect(mdAgain.headers["etag"]).toBeTruthy();
    expect(mdAgain.headers["etag"]).toBe(md.headers["etag"]);
    const pdf = await stack.http().get(`/simulations/${job.job_id}/exports/pdf`).set("X-API-Key", alice.key);
    expect(pdf.status).toBe(404);
    // Exports are rendered from the stored result on download: none is stored, and the JSON export is that result.
    const stored = await stack.env.core.db.simulationResult.findUniqueOrThrow({ where: { jobId: job.job_id } });
    const json = await stack.http().get(`/simulations/${job.job_id}/exports/json`).set("X-API-Key", alice.key);
    expect(json.status).toBe(200);
    expect(JSON.parse(json.text)).toEqual(stored.result);
    expect(await stack.env.core.db.simulationExport.count({ where: { jobId: job.job_id } })).toBe(0);
    const ledger = await stack.env.core.db.ledgerEntry.findMany({ where: { jobId: job.job_id } });
    expect(ledger).toHaveLength(1);
    expect(Number(ledger[0]!.costMicros)).toBe(Math.round(job.cost_usd * 1e6));
  });

  it("produces a downloadable PDF export when asked for one", async () => {
    const res = await submit(alice.key, { template_id: "mars_mission_portal", export_formats: ["pdf", "JSON"], timepoint_count: 4 });
    expect(res.body.export_formats).toEqual(["pdf", "json"]);
    const job = await stack.waitJob(alice.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job.status).toBe("COMPLETED");
    const pdf = await stack
      .http()
      .get(`/simulations/${job.job_id}/exports/pdf`)
      .set("X-API-Key", alice.key)
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on("data", (c: Buffer) => chunks.push(c));
        r.on("end", () => cb(null, Buffer.concat(chunks)));
      });
    expect(pdf.status).toBe(200);
    expect(pdf.headers["content-type"]).toBe("application/pdf");
    expect((pdf.body as Buffer).subarray(0, 5).toString()).toBe("%PDF-");
    // The worker stored the PDF (costly to typeset) and nothing else: the JSON export is rendered on download.
    const stored = await stack.env.core.db.simulationExport.findMany({ where: { jobId: job.job_id }, select: { format: true } });
    expect(stored).toEqual([{ format: "pdf" }]);
    const result = await stack.http().get(`/simulations/${job.job_id}/result`).set("X-API-Key", alice.key);
    expect(Object.keys(result.body.narrative_exports).sort()).toEqual(["json", "pdf"]);
    expect(result.body.timepoints).toHaveLength(4);
    expect((await stack.http().get(`/simulations/${job.job_id}/exports/markdown`).set("X-API-Key", alice.key)).status).toBe(404);
  });

  it("shows progress moving while the run advances", async () => {
    const res = await submit(alice.key, scripted({ steps: 8, step_ms: 60 }));
    const seen = await waitFor(
      async () => {
        const r = await stack.http().get(`/simulations/${res.body.job_id}`).set("X-API-Key", alice.key);
        return r.body.status === "RUNNING" && r.body.progress_percent > 0 && r.body.progress_percent < 100 ? r.body : false;
      },
      { what: "partial progress" },
    );
    expect(seen.current_step).toMatch(/^step \d\/8$/);
    const done = await stack.waitJob(alice.key, res.body.job_id, (j) => j.status === "COMPLETED");
    expect(done.cost_usd).toBeCloseTo(0.08, 10);
    expect(done.tokens_used).toBe(800);
  });

  it("reports FAILED with the error message and charges the steps before the failure", async () => {
    const res = await submit(alice.key, scripted({ steps: 4, fail_at_step: 3, cost_usd_per_step: 0.02 }));
    const job = await stack.waitJob(alice.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job).toMatchObject({ status: "FAILED", error_message: "scripted failure at step 3", cost_usd: 0.04, tokens_used: 200 });
    const result = await stack.http().get(`/simulations/${job.job_id}/result`).set("X-API-Key", alice.key);
    expect(result.status).toBe(400);
    expect(result.body.error).toBe("InvalidState");
  });

  it("cancels a pending job at once and a running one at its next step, charging the steps run", async () => {
    const running = await submit(alice.key, scripted({ steps: 200, step_ms: 100 }));
    await stack.waitJob(alice.key, running.body.job_id, (j) => j.status === "RUNNING" && j.progress_percent > 0);
    // The only worker slot is busy: this one waits in Postgres.
    const pending = await submit(alice.key, scripted({ steps: 1 }));
    const c1 = await stack.http().post(`/simulations/${pending.body.job_id}/cancel`).set("X-API-Key", alice.key).send({ reason: "changed my mind" });
    expect(c1.status).toBe(200);
    expect(c1.body).toMatchObject({ status: "CANCELLED", cancel_reason: "changed my mind", cost_usd: 0 });

    const c2 = await stack.http().post(`/simulations/${running.body.job_id}/cancel`).set("X-API-Key", alice.key).send({});
    expect(c2.status).toBe(200);
    const reportedAtCancel = c2.body.tokens_used / 100;
    const job = await stack.waitJob(alice.key, running.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job.status).toBe("CANCELLED");
    expect(job.tokens_used).toBeGreaterThan(0);
    expect(job.tokens_used).toBeLessThan(200 * 100);
    const stepsRun = job.tokens_used / 100;
    expect(job.cost_usd).toBeCloseTo(stepsRun * 0.01, 10);
    // It stops at the next step boundary: the step in flight, plus what the
    // reconciler had not yet applied when the cancel answered (100 ms steps).
    expect(stepsRun).toBeLessThanOrEqual(reportedAtCancel + 3);
    const again = await stack.http().post(`/simulations/${running.body.job_id}/cancel`).set("X-API-Key", alice.key).send({});
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("InvalidState");
    expect(again.body.message).toContain("CANCELLED");
  });

  it("a cancel that lands while a job runs its last step still ends it CANCELLED, charged for that step", async () => {
    // One step of 1.5 s: the step in flight is the last one, and its end is the boundary where the cancel applies.
    const res = await submit(alice.key, scripted({ steps: 1, step_ms: 1_500, cost_usd_per_step: 0.03 }));
    await stack.waitJob(alice.key, res.body.job_id, (j) => j.status === "RUNNING");
    const c = await stack.http().post(`/simulations/${res.body.job_id}/cancel`).set("X-API-Key", alice.key).send({ reason: "too late?" });
    expect(c.status).toBe(200);
    expect(c.body.status).toBe("RUNNING");
    const job = await stack.waitJob(alice.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job).toMatchObject({ status: "CANCELLED", cancel_reason: "too late?", cost_usd: 0.03, tokens_used: 100, current_step: "step 1/1" });
    const result = await stack.http().get(`/simulations/${job.job_id}/result`).set("X-API-Key", alice.key);
    expect(result.status).toBe(400);
    const usage = await stack.http().get("/simulations/stats").set("X-API-Key", alice.key);
    expect(usage.body.cancelled_jobs).toBeGreaterThanOrEqual(1);
  });

  it("answers 401, 403, 404 and 422 as the contract says", async () => {
    const own = await submit(alice.key, scripted({ steps: 1 }));
    expect((await stack.http().get(`/simulations/${own.body.job_id}`)).status).toBe(401);
    const bad = await stack
      .http()
      .get(`/simulations/${own.body.job_id}`)
      .set("X-API-Key", "tp_" + "0".repeat(32));
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ error: "Unauthorized", detail: null });
    expect(bad.body.request_id).toBe(bad.headers["x-request-id"]);
    const other = await stack.http().get(`/simulations/${own.body.job_id}`).set("X-API-Key", bob.key);
    expect(other.status).toBe(403);
    expect(other.body.error).toBe("Forbidden");
    const missing = await stack.http().get("/simulations/sim_000000000000").set("X-API-Key", alice.key);
    expect(missing.status).toBe(404);
    const unknown = await submit(alice.key, { template_id: "no_such_template" });
    expect(unknown.status).toBe(422);
    expect(unknown.body.detail).toEqual([{ path: "template_id", message: "unknown template 'no_such_template'" }]);
    const wrongType = await submit(alice.key, { template_id: "board_meeting", entity_count: "5" });
    expect(wrongType.status).toBe(422);
    expect(wrongType.body.detail[0].path).toBe("entity_count");
    const malformed = await stack.http().post("/simulations").set("X-API-Key", alice.key).set("Content-Type", "application/json").send("{nope");
    expect(malformed.status).toBe(422);
    const route = await stack.http().get("/nowhere");
    expect(route.status).toBe(404);
    expect(route.body.error).toBe("NotFound");
    const method = await stack.http().delete("/simulations").set("X-API-Key", alice.key);
    expect(method.status).toBe(405);
    const big = await stack
      .http()
      .post("/simulations")
      .set("Content-Type", "application/json")
      .send({ description: "x".repeat(70_000) });
    expect(big.status).toBe(413);
    expect(big.body.error).toBe("PayloadTooLarge");
    const echoed = await stack.http().get("/health").set("X-Request-Id", "my-trace-1");
    expect(echoed.headers["x-request-id"]).toBe("my-trace-1");
  });

  it("refuses a free user's second concurrent job with 429, then frees the slot when the first ends", async () => {
    const first = await submit(bob.key, scripted({ steps: 30, step_ms: 30, cost_usd_per_step: 0.001 }));
    expect(first.status).toBe(202);
    const second = await submit(bob.key, scripted({ steps: 1 }));
    expect(second.status).toBe(429);
    expect(second.body).toMatchObject({ error: "ConcurrencyLimitExceeded", active_jobs: 1, concurrency_limit: 1 });
    expect(Number(second.headers["retry-after"])).toBeGreaterThan(0);
    await stack.waitJob(bob.key, first.body.job_id, (j) => FINAL_JOB.has(j.status));
    const third = await submit(bob.key, scripted({ steps: 1 }));
    expect(third.status).toBe(202);
  });

  it("serves the template catalog with short names resolving to catalog ids", async () => {
    const all = await stack.http().get("/simulations/templates").set("X-API-Key", alice.key);
    expect(all.status).toBe(200);
    // 22 public templates + crisis_response + test/scripted (switched on in tests).
    expect(all.body.total).toBe(24);
    expect(all.body.categories.sort()).toEqual(["convergence", "persona", "showcase", "test"]);
    const board = all.body.templates.find((t: { template_id: string }) => t.template_id === "showcase/board_meeting");
    expect(board).toEqual(
      expect.objectContaining({
        tier: "standard",
        category: "showcase",
        default_entity_count: 5,
        default_timepoint_count: 3,
        default_temporal_mode: "FORWARD",
        estimated_cost_usd: 0.05,
        estimated_duration_seconds: 120,
      }),
    );
    const persona = await stack.http().get("/simulations/templates?category=persona").set("X-API-Key", alice.key);
    expect(persona.body.total).toBe(5);
    const one = await stack.http().get("/simulations/templates/persona/agent4_elk_migration").set("X-API-Key", alice.key);
    expect(one.status).toBe(200);
    expect(one.body.default_temporal_mode).toBe("CYCLICAL");
    expect((await stack.http().get("/simulations/templates/showcase/nope").set("X-API-Key", alice.key)).status).toBe(404);
    const crisis = await submit(alice.key, { template_id: "crisis_response", temporal_mode: "branching", entity_count: 6 });
    expect(crisis.body).toMatchObject({ template_id: "showcase/crisis_response", temporal_mode: "BRANCHING", entity_count: 6, timepoint_count: 3 });
    expect(crisis.body.estimated_cost_usd).toBeCloseTo((0.05 * 6) / 4, 10);
  });

  it("lists the caller's jobs newest first with filters and bounds, and sums them in stats", async () => {
    // Stats and rows are compared below: let every job of earlier tests finish first.
    await waitFor(async () => (await stack.env.core.db.simulationJob.count({ where: { ownerId: alice.id, status: { in: ["PENDING", "RUNNING"] } } })) === 0, {
      what: "alice's jobs to finish",
    });
    const list = await stack.http().get("/simulations?page_size=2").set("X-API-Key", alice.key);
    expect(list.status).toBe(200);
    expect(list.body.jobs).toHaveLength(2);
    expect(list.body.page_size).toBe(2);
    expect(list.body.total).toBeGreaterThan(2);
    expect(Date.parse(list.body.jobs[0].created_at)).toBeGreaterThanOrEqual(Date.parse(list.body.jobs[1].created_at));
    const failed = await stack.http().get("/simulations?status_filter=failed").set("X-API-Key", alice.key);
    expect(failed.body.jobs.every((j: { status: string }) => j.status === "FAILED")).toBe(true);
    expect(failed.body.total).toBe(1);
    expect((await stack.http().get("/simulations?page_size=101").set("X-API-Key", alice.key)).status).toBe(422);
    expect((await stack.http().get("/simulations?page=0").set("X-API-Key", alice.key)).status).toBe(422);
    expect((await stack.http().get("/simulations?status=").set("X-API-Key", alice.key)).status).toBe(200);
    const stats = await stack.http().get("/simulations/stats").set("X-API-Key", alice.key);
    const rows = await stack.env.core.db.simulationJob.findMany({ where: { ownerId: alice.id } });
    expect(stats.body.total_jobs).toBe(rows.length);
    expect(stats.body.failed_jobs).toBe(1);
    const ended = rows.filter((r) => ["COMPLETED", "FAILED", "CANCELLED"].includes(r.status));
    expect(stats.body.total_cost_usd).toBeCloseTo(ended.reduce((a, r) => a + Number(r.costMicros), 0) / 1e6, 6);
    expect(stats.body.avg_duration_seconds).toBeGreaterThan(0);
  });

  it("shows operators where jobs are and how much worker capacity is live", async () => {
    const admin = (r: request.Test) => r.set("Authorization", "Bearer test-admin-token-0123456789abcdef0123");
    expect((await stack.http().get("/admin/metrics")).status).toBe(401);
    const ops = await admin(stack.http().get("/admin/operations"));
    expect(ops.status).toBe(200);
    const completed = await stack.env.core.db.simulationJob.count({ where: { status: "COMPLETED" } });
    expect(ops.body.jobs.COMPLETED).toBe(completed);
    expect(ops.body.events).toEqual({
      backlog: expect.any(Number),
      unacknowledged: expect.any(Number),
      dead_lettered: 0,
      oldest_age_seconds: expect.any(Number),
    });
    expect(ops.body.workers).toEqual({ live: 1, capacity: 1 });
    expect(ops.body.queue).toHaveProperty("active");
    const own = await submit(alice.key, scripted({ steps: 1 }));
    expect((await stack.http().get(`/simulations/${own.body.job_id}`).set("X-API-Key", alice.key)).status).toBe(200);
    const metrics = await admin(stack.http().get("/admin/metrics"));
    expect(metrics.status).toBe(200);
    expect(metrics.headers["content-type"]).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/simbatch_jobs\{status="COMPLETED"\} \d+/);
    expect(metrics.text).toContain("simbatch_worker_capacity 1");
    expect(metrics.text).toMatch(/simbatch_http_request_duration_seconds_count\{method="GET",route="\/simulations\/:job_id",status="200"\} \d+/);
  });

  it("manages users and keys through the admin API", async () => {
    const admin = (r: request.Test) => r.set("Authorization", "Bearer test-admin-token-0123456789abcdef0123");
    expect((await stack.http().post("/admin/users").send({ user_id: "carol" })).status).toBe(401);
    const created = await admin(stack.http().post("/admin/users")).send({ user_id: "carol", tier: "basic" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ user_id: "carol", tier: "basic" });
    expect((await admin(stack.http().post("/admin/users")).send({ user_id: "carol", tier: "pro" })).status).toBe(200);
    // Posting an existing user without a tier keeps its tier.
    const again = await admin(stack.http().post("/admin/users")).send({ user_id: "carol" });
    expect(again.status).toBe(200);
    expect(again.body.tier).toBe("pro");
    const key = await admin(stack.http().post("/admin/users/carol/api-keys")).send({ name: "ci" });
    expect(key.status).toBe(201);
    expect(key.body.api_key).toMatch(/^tp_[0-9a-f]{32}$/);
    const stored = await stack.env.core.db.apiKey.findUnique({ where: { id: key.body.key_id } });
    expect(stored?.keyHash).not.toContain(key.body.api_key.slice(3));
    expect((await stack.http().get("/simulations").set("X-API-Key", key.body.api_key)).status).toBe(200);
    expect((await admin(stack.http().delete(`/admin/api-keys/${key.body.key_id}`))).status).toBe(204);
    expect((await stack.http().get("/simulations").set("X-API-Key", key.body.api_key)).status).toBe(401);
  });
});

import type request from "supertest";

describe("a run that fails after coalesced progress", () => {
  // One progress event per minute at most: only a run's first step is sent as it happens.
  const stack = new Stack({ workers: [1], progressIntervalMs: 60_000 });
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  it("shows the step it reached and what it was charged, not the last progress that happened to be sent", async () => {
    const user = await stack.env.user("dana", "pro");
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", user.key)
      .send(scripted({ steps: 10, fail_at_step: 10 }));
    expect(res.status).toBe(202);
    const job = await stack.waitJob(user.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job).toMatchObject({ status: "FAILED", progress_percent: 90, current_step: "step 9/10", cost_usd: 0.09, tokens_used: 900 });
  });
});
