import { expireIdempotencyKeys } from "@simbatch/core";
import { waitFor } from "@simbatch/testing";
import { Stack, scripted } from "../support/stack.ts";

const quick = () => scripted({ steps: 1, step_ms: 5 });
const slow = (steps = 40) => scripted({ steps, step_ms: 25 });

/** Contract: Batch control → Idempotent create, Dry run, Pause and resume, Projections. */
describe("batch control", () => {
  const stack = new Stack({ workers: [4], limits: { basic: { simulations: 30 } } });
  let pro: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    pro = await stack.env.user("ctl", "pro");
  });
  afterAll(() => stack.stop());

  const batchCount = async (owner: string) => stack.env.core.db.batch.count({ where: { ownerId: owner } });
  const create = (key: string, body: unknown, idem?: string, query = "") => {
    const r = stack
      .http()
      .post(`/simulations/batch${query}`)
      .set("X-API-Key", key)
      .send(body as object);
    return idem === undefined ? r : r.set("Idempotency-Key", idem);
  };

  describe("Idempotency-Key", () => {
    it("replays the first response for the same body (key order and whitespace aside), writing nothing more", async () => {
      const u = await stack.env.user("idem1", "pro");
      const first = await create(u.key, { simulations: [quick(), quick()], priority: 60, metadata: { a: 1, b: 2 } }, "order-42");
      expect(first.status).toBe(202);
      expect(first.headers["idempotent-replayed"]).toBeUndefined();
      // Same value, other key order and spacing.
      const raw = `{ "metadata": {"b":2, "a":1}, "priority": 60,   "simulations": ${JSON.stringify([quick(), quick()])} }`;
      const again = await stack
        .http()
        .post("/simulations/batch")
        .set("X-API-Key", u.key)
        .set("Idempotency-Key", "order-42")
        .set("Content-Type", "application/json")
        .send(raw);
      expect(again.status).toBe(202);
      expect(again.headers["idempotent-replayed"]).toBe("true");
      expect(again.body).toEqual(first.body);
      // The same bytes (key order included), so the same ETag.
      expect(again.text).toBe(first.text);
      expect(again.headers.etag).toBe(first.headers.etag);
      expect(await batchCount(u.id)).toBe(1);
      const sims = await stack.env.core.db.$queryRaw<{ n: bigint }[]>`SELECT simulations AS n FROM usage_totals WHERE user_id = ${u.id}`;
      expect(Number(sims[0]!.n)).toBe(2);
    });

    it("answers 422 IdempotencyKeyReused for another body under the same key", async () => {
      const u = await stack.env.user("idem2", "pro");
      expect((await create(u.key, { simulations: [quick()] }, "k-1")).status).toBe(202);
      const other = await create(u.key, { simulations: [quick(), quick()] }, "k-1");
      expect(other.status).toBe(422);
      expect(other.body.error).toBe("IdempotencyKeyReused");
      expect(await batchCount(u.id)).toBe(1);
    });

    it("validates the key: 1-255 characters of [A-Za-z0-9._:-]", async () => {
      for (const bad of ["has space", "x".repeat(256), "ünï"]) {
        const res = await create(pro.key, { simulations: [quick()] }, bad);
        expect(res.status).toBe(422);
        expect(res.body.error).toBe("ValidationError");
        expect(res.body.detail[0].path).toBe("Idempotency-Key");
      }
      expect((await create(pro.key, { simulations: [quick()] }, "A.b_c:d-9")).status).toBe(202);
      // Checked before the body's fields, on both creates.
      const batchBoth = await create(pro.key, { simulations: [{ template_id: "nope" }] }, "has space");
      const single = await stack.http().post("/simulations").set("X-API-Key", pro.key).set("Idempotency-Key", "has space").send({ template_id: "nope" });
      for (const res of [batchBoth, single]) expect(res.body.detail[0].path).toBe("Idempotency-Key");
    });

    it("creates at most one batch however many concurrent requests share a key; the others replay or get 409", async () => {
      const u = await stack.env.user("idem3", "pro");
      const body = { simulations: [quick(), quick(), quick()] };
      const all = await Promise.all(Array.from({ length: 12 }, () => create(u.key, body, "race")));
      expect(await batchCount(u.id)).toBe(1);
      const created = all.filter((r) => r.status === 202 && !r.headers["idempotent-replayed"]);
      expect(created).toHaveLength(1);
      for (const r of all) {
        if (r.status === 202) expect(r.body.batch_id).toBe(created[0]!.body.batch_id);
        else {
          expect(r.status).toBe(409);
          expect(r.body.error).toBe("IdempotencyKeyInProgress");
          expect(r.headers["retry-after"]).toBe("1");
        }
      }
      const later = await create(u.key, body, "race");
      expect(later.headers["idempotent-replayed"]).toBe("true");
      expect(later.body.batch_id).toBe(created[0]!.body.batch_id);
    });

    it("does not store a refused first request: the key may be reused", async () => {
      const u = await stack.env.user("idem4", "free");
      const tooBig = await create(u.key, { simulations: Array.from({ length: 6 }, quick) }, "retry-me");
      expect(tooBig.status).toBe(400);
      expect(tooBig.body.error).toBe("BatchTooLarge");
      const ok = await create(u.key, { simulations: [quick()] }, "retry-me");
      expect(ok.status).toBe(202);
      expect(ok.headers["idempotent-replayed"]).toBeUndefined();
    });

    it("scopes keys to the user and the route, and works on POST /simulations", async () => {
      const a = await stack.env.user("idem5a", "pro");
      const b = await stack.env.user("idem5b", "pro");
      const ba = await create(a.key, { simulations: [quick()] }, "shared");
      const bb = await create(b.key, { simulations: [quick()] }, "shared");
      expect(bb.status).toBe(202);
      expect(bb.body.batch_id).not.toBe(ba.body.batch_id);
      const single = () => stack.http().post("/simulations").set("X-API-Key", a.key).set("Idempotency-Key", "shared").send(quick());
      const s1 = await single();
      expect(s1.status).toBe(202);
      const s2 = await single();
      expect(s2.status).toBe(202);
      expect(s2.headers["idempotent-replayed"]).toBe("true");
      expect(s2.body.job_id).toBe(s1.body.job_id);
      expect(s2.text).toBe(s1.text);
      expect(await stack.env.core.db.simulationJob.count({ where: { ownerId: a.id, batchId: null } })).toBe(1);
    });

    it("keeps keys 24 h: an expired key is new again, and the cleanup deletes expired records", async () => {
      const u = await stack.env.user("idem6", "pro");
      const first = await create(u.key, { simulations: [quick()] }, "old");
      await stack.env.core.db.$executeRaw`UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE user_id = ${u.id}`;
      const fresh = await create(u.key, { simulations: [quick(), quick()] }, "old");
      expect(fresh.status).toBe(202);
      expect(fresh.body.batch_id).not.toBe(first.body.batch_id);
      await stack.env.core.db.$executeRaw`UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE user_id = ${u.id}`;
      expect(await expireIdempotencyKeys(stack.env.core.db, new Date())).toBeGreaterThanOrEqual(1);
      expect(await stack.env.core.db.idempotencyKey.count({ where: { userId: u.id } })).toBe(0);
    });

    it("runs the cleanup on its own, in the reconciler's sweep", async () => {
      const u = await stack.env.user("idem7", "pro");
      await create(u.key, { simulations: [quick()] }, "swept");
      await stack.env.core.db.$executeRaw`UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE user_id = ${u.id}`;
      await stack.reconciler.sweepOnce();
      expect(await stack.env.core.db.idempotencyKey.count({ where: { userId: u.id } })).toBe(0);
    });
  });

  describe("dry run", () => {
    it("runs every admission check and writes nothing", async () => {
      const u = await stack.env.user("dry1", "basic");
      const before = await stack.env.core.db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM simulation_jobs`;
      const res = await create(u.key, { simulations: [quick(), quick(), quick()], budget_cap_usd: 5 }, "ignored-key", "?dry_run=true");
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        dry_run: true,
        total_jobs: 3,
        estimated_cost_usd: expect.any(Number),
        job_estimates_usd: [expect.any(Number), expect.any(Number), expect.any(Number)],
        simulations_remaining: 27,
        cost_remaining_usd: expect.any(Number),
      });
      expect(res.body.estimated_cost_usd).toBeCloseTo(
        res.body.job_estimates_usd.reduce((a: number, e: number) => a + e, 0),
        6,
      );
      expect(await batchCount(u.id)).toBe(0);
      const after = await stack.env.core.db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM simulation_jobs`;
      expect(after[0]!.n).toBe(before[0]!.n);
      // The dry run ignored the key: a real create with it is a first request.
      const real = await create(u.key, { simulations: [quick(), quick(), quick()], budget_cap_usd: 5 }, "ignored-key");
      expect(real.status).toBe(202);
      expect(real.headers["idempotent-replayed"]).toBeUndefined();
      const again = await create(u.key, { simulations: [quick()] }, undefined, "?dry_run=TRUE");
      expect(again.body.simulations_remaining).toBe(26);
    });

    it("answers exactly the error the real create would get", async () => {
      const u = await stack.env.user("dry2", "free");
      const body = { simulations: Array.from({ length: 6 }, quick) };
      const dry = await create(u.key, body, undefined, "?dry_run=true");
      const real = await create(u.key, body);
      expect(dry.status).toBe(400);
      expect({ ...dry.body, request_id: null }).toEqual({ ...real.body, request_id: null });
      const badQuery = await create(u.key, { simulations: [quick()] }, undefined, "?dry_run=maybe");
      expect(badQuery.status).toBe(422);
      expect(badQuery.body.detail[0].path).toBe("dry_run");
    });

    it("counts as one API call", async () => {
      const u = await stack.env.user("dry4", "pro");
      const used = async () => (await stack.http().get("/simulations/batch/usage").set("X-API-Key", u.key)).body.api_calls_used as number;
      const before = await used();
      expect((await create(u.key, { simulations: [quick()] }, undefined, "?dry_run=true")).status).toBe(200);
      expect((await used()) - before).toBe(2);
    });

    it("reports -1 remaining for unlimited quotas", async () => {
      const u = await stack.env.user("dry3", "enterprise");
      const res = await create(u.key, { simulations: [quick()] }, undefined, "?dry_run=true");
      expect(res.body).toMatchObject({ simulations_remaining: -1, cost_remaining_usd: -1 });
    });
  });

  describe("pause and resume", () => {
    it("starts no job of a paused batch; running jobs finish; resume lets the rest run", async () => {
      const res = await create(pro.key, { simulations: [slow(12), slow(12), quick(), quick(), quick()], parallel_jobs: 2 });
      const id = res.body.batch_id;
      expect(res.body).toMatchObject({ paused: false, paused_at: null });
      await stack.waitBatch(pro.key, id, (b) => b.progress.running_jobs > 0);
      const paused = await stack.http().post(`/simulations/batch/${id}/pause`).set("X-API-Key", pro.key);
      expect(paused.status).toBe(200);
      expect(paused.body.paused).toBe(true);
      expect(typeof paused.body.paused_at).toBe("string");
      expect(["PENDING", "RUNNING"]).toContain(paused.body.status);
      // Pausing again is a no-op 200 that keeps the first paused_at.
      const twice = await stack.http().post(`/simulations/batch/${id}/pause`).set("X-API-Key", pro.key);
      expect(twice.status).toBe(200);
      expect(twice.body.paused_at).toBe(paused.body.paused_at);
      // What was running finishes; nothing else starts.
      const settled = await stack.waitBatch(pro.key, id, (b) => b.progress.running_jobs === 0);
      const startedWhilePaused = (await stack.batchRows(id)).filter((r) => r.startedAt && r.startedAt > new Date(paused.body.paused_at));
      expect(startedWhilePaused).toEqual([]);
      expect(settled.status).toBe("RUNNING");
      expect(settled.progress.pending_jobs).toBeGreaterThan(0);
      // Still nothing starts across dispatch passes and a sweep.
      await stack.reconciler.sweepOnce();
      expect((await stack.batchRows(id)).filter((r) => r.status === "PENDING").length).toBe(settled.progress.pending_jobs);
      const resumed = await stack.http().post(`/simulations/batch/${id}/resume`).set("X-API-Key", pro.key);
      expect(resumed.body).toMatchObject({ paused: false, paused_at: null });
      const done = await stack.waitBatch(pro.key, id, (b) => b.completed_at !== null);
      expect(done.status).toBe("COMPLETED");
    });

    it("dates paused_at after every start it did not prevent, when the pause races the batch's first claims", async () => {
      // Created and paused at once, concurrently: claims of released jobs run while the pauses wait for the dispatch lock.
      const ids = await Promise.all(
        Array.from({ length: 8 }, async () => {
          // 1 s jobs: the pause must find the batch unfinished however slow the machine (quick ones could end first: 400).
          const res = await create(pro.key, { simulations: [slow(), slow(), slow(), slow()], parallel_jobs: 4 });
          const paused = await stack.http().post(`/simulations/batch/${res.body.batch_id}/pause`).set("X-API-Key", pro.key);
          expect(paused.status).toBe(200);
          return { id: res.body.batch_id as string, pausedAt: new Date(paused.body.paused_at) };
        }),
      );
      for (const { id, pausedAt } of ids) {
        await stack.waitBatch(pro.key, id, (b) => b.progress.running_jobs === 0);
        const late = (await stack.batchRows(id)).filter((r) => r.startedAt && r.startedAt > pausedAt).map((r) => r.id);
        expect({ id, late }).toEqual({ id, late: [] });
        await stack.http().post(`/simulations/batch/${id}/cancel`).set("X-API-Key", pro.key).send({});
      }
    });

    it("runs a job again at resume when a worker fetched it after the pause took it back (no wait for the sweep's repair)", async () => {
      // parallel_jobs 1: the second job waits while the first runs, so the pause finds it PENDING.
      const res = await create(pro.key, { simulations: [slow(40), quick()], parallel_jobs: 1 });
      const id = res.body.batch_id;
      const jobId = res.body.job_ids[1] as string;
      await stack.waitBatch(pro.key, id, (b) => b.progress.running_jobs > 0);
      expect((await stack.http().post(`/simulations/batch/${id}/pause`).set("X-API-Key", pro.key)).status).toBe(200);
      expect((await stack.batchRows(id))[1]!.status).toBe("PENDING");
      // What a worker that fetched the BullMQ job before the pause removed it does: the claim finds the job taken back, skips it.
      await stack.env.core.queue.add({ jobId, priority: 50, requestId: null });
      await waitFor(async () => !["waiting", "prioritized", "active"].includes(await stack.env.core.queue.state(jobId)), { what: "the skip" });
      expect((await stack.batchRows(id))[1]!.status).toBe("PENDING");
      await stack.http().post(`/simulations/batch/${id}/resume`).set("X-API-Key", pro.key);
      // The sweep's repair (REPAIR_AFTER_MS, 60 s here) would also run it; this must not need it.
      const done = await stack.waitBatch(pro.key, id, (b) => b.completed_at !== null, 15_000);
      expect(done.status).toBe("COMPLETED");
    });

    it("survives a restart of the API and the reconciler, and a paused batch can be cancelled", async () => {
      const res = await create(pro.key, { simulations: [quick(), quick(), quick()], parallel_jobs: 1 });
      const id = res.body.batch_id;
      await stack.http().post(`/simulations/batch/${id}/pause`).set("X-API-Key", pro.key);
      await stack.restartApi();
      await stack.reconciler.stop();
      await stack.restartReconciler();
      const got = await stack.http().get(`/simulations/batch/${id}`).set("X-API-Key", pro.key);
      expect(got.body.paused).toBe(true);
      await stack.reconciler.sweepOnce();
      const rows = await stack.batchRows(id);
      expect(rows.filter((r) => r.status === "COMPLETED" || r.status === "RUNNING").length).toBeLessThanOrEqual(1);
      const cancelled = await stack.http().post(`/simulations/batch/${id}/cancel`).set("X-API-Key", pro.key).send({});
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe("CANCELLED");
      const done = await stack.waitBatch(pro.key, id, (b) => b.completed_at !== null);
      expect(done.progress.pending_jobs).toBe(0);
    });

    it("refuses finished batches with 400 InvalidState; resuming a running batch is a no-op; 403/404 as every batch route", async () => {
      const res = await create(pro.key, { simulations: [quick()] });
      const id = res.body.batch_id;
      const resumed = await stack.http().post(`/simulations/batch/${id}/resume`).set("X-API-Key", pro.key);
      expect(resumed.status).toBe(200);
      expect(resumed.body.paused).toBe(false);
      await stack.waitBatch(pro.key, id, (b) => b.completed_at !== null);
      for (const action of ["pause", "resume"]) {
        const r = await stack.http().post(`/simulations/batch/${id}/${action}`).set("X-API-Key", pro.key);
        expect(r.status).toBe(400);
        expect(r.body.error).toBe("InvalidState");
        expect(r.body.message).toContain("COMPLETED");
      }
      const other = await stack.env.user("ctl-other", "pro");
      expect((await stack.http().post(`/simulations/batch/${id}/pause`).set("X-API-Key", other.key)).status).toBe(403);
      expect((await stack.http().post(`/simulations/batch/batch_000000000000/pause`).set("X-API-Key", pro.key)).status).toBe(404);
    });
  });

  describe("projections", () => {
    it("gives eta_seconds and projected_cost_usd on every batch view", async () => {
      const res = await create(pro.key, { simulations: [quick(), slow(20), slow(20), slow(20)], parallel_jobs: 1 });
      expect(res.body.eta_seconds).toBeNull();
      expect(res.body.projected_cost_usd).toBeCloseTo(res.body.cost.estimated_cost_usd, 6);
      const mid = await stack.waitBatch(pro.key, res.body.batch_id, (b) => b.progress.completed_jobs >= 1 && b.completed_at === null);
      expect(mid.eta_seconds).toBeGreaterThan(0);
      const done = mid.progress.completed_jobs + mid.progress.failed_jobs + mid.progress.cancelled_jobs;
      const mean = mid.cost.actual_cost_usd / done;
      expect(mid.projected_cost_usd).toBeCloseTo(mid.cost.actual_cost_usd + mean * (4 - done), 5);
      const end = await stack.waitBatch(pro.key, res.body.batch_id, (b) => b.completed_at !== null);
      expect(end.eta_seconds).toBeNull();
      expect(end.projected_cost_usd).toBe(end.cost.actual_cost_usd);
      const list = await stack.http().get("/simulations/batch").set("X-API-Key", pro.key);
      for (const b of list.body.batches) expect(b).toHaveProperty("projected_cost_usd");
    });
  });
});
