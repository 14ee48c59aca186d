import { redisKeys } from "@simbatch/contracts";
import { applyEvents, claimJob, sweep, SweepState } from "@simbatch/core";
import { createEngine, type SimulationEngine } from "@simbatch/engine";
import { waitFor } from "@simbatch/testing";
import { Client } from "pg";
import { counterDrift, moneyMismatch, withSql } from "../support/invariants.ts";
import { FINAL_JOB, Stack, scripted } from "../support/stack.ts";

const ADMIN = "reliability-admin-token-0123456789abcdef";

/** Exactly-once runs under lag, bounded retries, superseded attempts' spending, poison events, budget stop reason (issue 9). */
describe("reliability", () => {
  const builtin = createEngine({ kind: "builtin" });
  // Throws a non-engine error (a dependency down) after the 2nd step of jobs with tokens_per_step 7 (unknown config keys are dropped).
  const engine: SimulationEngine = {
    ...builtin,
    run: (spec, ctx) =>
      builtin.run(spec, {
        ...ctx,
        onStep: async (r) => {
          await ctx.onStep(r);
          if ((spec.config as { tokens_per_step?: number }).tokens_per_step === 7 && r.step === 2)
            throw new Error("result store unreachable: connection reset");
        },
      }),
  };
  const stack = new Stack({ workers: [4], engine, maxJobAttempts: 2, repairAfterMs: 300, adminToken: ADMIN });
  let u: { id: string; key: string };
  const db = () => stack.env.core.db;
  const sqlCheck = () => withSql(stack.env.databaseUrl, async (sql) => ({ drift: await counterDrift(sql), money: await moneyMismatch(sql) }));
  const noDrift = { batches: [], user_counters: [], usage_periods: [] };

  beforeAll(async () => {
    await stack.start();
    u = await stack.env.user("rel", "enterprise");
  });
  afterAll(() => stack.stop());

  it("a finished job never runs again while the reconciler is frozen past every repair timeout", async () => {
    stack.reconciler.freeze(true);
    let batchId: string;
    let completed: string[];
    let failed: string[];
    try {
      const ok = scripted({ steps: 5, step_ms: 20, cost_usd_per_step: 0.01, tokens_per_step: 10 });
      const fail = scripted({ steps: 5, step_ms: 20, cost_usd_per_step: 0.01, tokens_per_step: 10, fail_at_step: 5 });
      const res = await stack.submitBatch(u.key, { simulations: [...Array(4).fill(ok), ...Array(4).fill(fail)], parallel_jobs: 8, fail_fast: false });
      expect(res.status).toBe(202);
      batchId = res.body.batch_id;
      const ids = res.body.job_ids as string[];
      [completed, failed] = [ids.slice(0, 4), ids.slice(4)];
      // The frozen reconciler dispatches nothing: release like a second reconciler's dispatch would.
      await sweep(stack.env.core, { repairAfterMs: 60_000 });
      // Every attempt finishes while no event is applied: a completed one is ended and charged with its result by its
      // worker; a failed one's outcome is in Postgres, its event waits unapplied in the stream.
      await waitFor(
        async () =>
          ((await db().simulationJob.count({ where: { id: { in: completed }, status: "COMPLETED" } })) === 4 &&
            (await db().jobAttemptOutcome.count({ where: { jobId: { in: failed } } })) === 4) ||
          false,
        { timeoutMs: 20_000, what: "ends and outcomes" },
      );
      const outcomesAt = Date.now();
      expect(await db().simulationJob.count({ where: { id: { in: failed }, status: "RUNNING" } })).toBe(4);
      expect(await db().ledgerEntry.count({ where: { jobId: { in: completed }, attempt: 1, costMicros: 50_000n } })).toBe(4);
      expect(await db().simulationResult.count({ where: { jobId: { in: completed } } })).toBe(4);
      // The batch waits for its events (or the sweep) to be re-derived.
      expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).status).toBe("RUNNING");

      // A redelivery of a finished attempt (removeOnComplete evicted it, an operator re-added it) is refused at the claim.
      expect(await claimJob(db(), failed[0]!, 2)).toEqual({ kind: "finished", jobId: failed[0], attempt: 1 });
      expect(await claimJob(db(), completed[0]!, 2)).toEqual({ kind: "not-runnable", status: "COMPLETED" });
      await stack.env.core.queue.readd({ jobId: failed[1]!, priority: 50, requestId: null });
      await stack.env.core.queue.readd({ jobId: completed[1]!, priority: 50, requestId: null });

      // Past the repair timeout a second reconciler's sweep re-queues nothing; it applies the recorded outcomes
      // instead, and re-derives the batch: every job has ended, so it ends, with no event applied.
      await waitFor(() => Date.now() - outcomesAt > 400 || false, { what: "repair timeout to pass" });
      const report = await sweep(stack.env.core, { repairAfterMs: 300 });
      expect(report.requeued).toBe(0);
      expect(report.outcomesApplied).toBeGreaterThanOrEqual(3);
      const swept = await db().batch.findUniqueOrThrow({ where: { id: batchId } });
      expect(swept).toMatchObject({ status: "PARTIAL", completedJobs: 4, failedJobs: 4 });
    } finally {
      stack.reconciler.freeze(false);
    }
    // The backlog is applied on thaw: replays change nothing.
    await waitFor(async () => (await stack.env.core.redis.xlen(redisKeys(stack.env.prefix).events)) === 0 || false, {
      timeoutMs: 20_000,
      what: "backlog applied",
    });
    const rows = await db().simulationJob.findMany({ where: { batchId } });
    expect(rows).toHaveLength(8);
    for (const r of rows.filter((x) => completed.includes(x.id))) expect(r).toMatchObject({ status: "COMPLETED", attempts: 1, costMicros: 50_000n });
    for (const r of rows.filter((x) => failed.includes(x.id))) expect(r).toMatchObject({ status: "FAILED", attempts: 1 });
    const ledger = await db().ledgerEntry.findMany({ where: { batchId } });
    expect(ledger).toHaveLength(8);
    expect(ledger.every((l) => l.attempt === 1)).toBe(true);
    const batch = await stack.waitBatch(u.key, batchId, (b) => b.completed_at !== null);
    expect(batch).toMatchObject({ status: "PARTIAL", progress: { completed_jobs: 4, failed_jobs: 4 } });
    expect(await sqlCheck()).toMatchObject({ drift: noDrift, money: { mismatches: [] } });
  });

  it("a release Postgres lost in a crash (a pass commits without waiting for its WAL flush) only delays its jobs", async () => {
    const sim = scripted({ steps: 1, cost_usd_per_step: 0.01, tokens_per_step: 10 });
    stack.reconciler.freeze(true);
    let ids: string[];
    try {
      const res = await stack.submitBatch(u.key, { simulations: [sim, sim], parallel_jobs: 2 });
      expect(res.status).toBe(202);
      ids = res.body.job_ids as string[];
      // What such a crash leaves: BullMQ holds the jobs a pass released, Postgres no longer has the release.
      await stack.env.core.queue.addMany(ids.map((jobId) => ({ jobId, priority: 50, requestId: null })));
      // A worker refuses them (their rows are not released) and drops them from BullMQ.
      await waitFor(async () => (await Promise.all(ids.map((id) => stack.env.core.queue.state(id)))).every((s) => s === "missing") || false, {
        timeoutMs: 20_000,
        what: "unreleased jobs refused",
      });
      expect(await db().simulationJob.count({ where: { id: { in: ids }, status: "PENDING", releasedAt: null, attempts: 0 } })).toBe(2);
    } finally {
      stack.reconciler.freeze(false);
    }
    // The next pass releases them again and its add puts them back: each runs once and is charged once.
    await waitFor(async () => (await db().simulationJob.count({ where: { id: { in: ids }, status: "COMPLETED" } })) === 2 || false, {
      timeoutMs: 20_000,
      what: "jobs completed",
    });
    const rows = await db().simulationJob.findMany({ where: { id: { in: ids } } });
    for (const r of rows) expect(r).toMatchObject({ status: "COMPLETED", attempts: 1, costMicros: 10_000n });
    expect(await db().ledgerEntry.count({ where: { jobId: { in: ids } } })).toBe(2);
    expect(await sqlCheck()).toMatchObject({ drift: noDrift, money: { mismatches: [] } });
  });

  it("an error outside the engine is retried up to MAX_JOB_ATTEMPTS, then FAILED with a message, charged what its attempts reported", async () => {
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", u.key)
      .send(scripted({ steps: 5, step_ms: 10, cost_usd_per_step: 0.01, tokens_per_step: 7 }));
    expect(res.status).toBe(202);
    const id = res.body.job_id as string;
    const job = await stack.waitJob(u.key, id, (j) => FINAL_JOB.has(j.status), 30_000);
    expect(job.status).toBe("FAILED");
    expect(job.error_message).toMatch(/failed after 2 attempts/);
    const row = await db().simulationJob.findUniqueOrThrow({ where: { id } });
    expect(row.attempts).toBe(2);
    // Each attempt reported 2 steps (0.02) before the error: both are charged, one ledger row each.
    const ledger = await db().ledgerEntry.findMany({ where: { jobId: id }, orderBy: { attempt: "asc" } });
    expect(ledger.map((l) => [l.attempt, l.costMicros])).toEqual([
      [1, 20_000n],
      [2, 20_000n],
    ]);
    expect(row.costMicros).toBe(40_000n);
    expect(job.cost_usd).toBeCloseTo(0.04, 9);
    // The sweep leaves it alone: nothing in flight, nothing re-queued.
    const report = await sweep(stack.env.core, { repairAfterMs: 0 });
    expect(report.requeued).toBe(0);
    expect((await db().simulationJob.findUniqueOrThrow({ where: { id } })).attempts).toBe(2);
    expect(await sqlCheck()).toMatchObject({ drift: noDrift, money: { mismatches: [] } });
  });

  it("a superseded attempt's reported spending is charged once, when the next attempt claims; budgets see it", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 3, step_ms: 1000 })], parallel_jobs: 1, budget_cap_usd: 10 });
    const id = res.body.job_ids[0] as string;
    // Simulate a crashed attempt: take the job away from BullMQ and claim it here, as a worker would.
    await waitFor(async () => (await db().simulationJob.findUniqueOrThrow({ where: { id } })).status === "RUNNING" || false, { what: "running" });
    const attempt = (await db().simulationJob.findUniqueOrThrow({ where: { id } })).attempts;
    await applyEvents(stack.env.core, [
      { type: "progress", jobId: id, attempt, at: new Date().toISOString(), requestId: null, costMicros: 70_000, tokens: 700, progress: 30, step: "s" },
    ]);
    const next = await claimJob(db(), id, 5);
    expect(next.kind).toBe("claimed");
    const row = await db().simulationJob.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ attempts: attempt + 1, carriedCostMicros: 70_000n, costMicros: 70_000n });
    const charge = await db().ledgerEntry.findUniqueOrThrow({ where: { jobId_attempt: { jobId: id, attempt } } });
    expect(charge.costMicros).toBe(70_000n);
    // The new attempt's spending adds to it; the running cost (what budget checks read) includes both.
    await applyEvents(stack.env.core, [
      {
        type: "progress",
        jobId: id,
        attempt: attempt + 1,
        at: new Date().toISOString(),
        requestId: null,
        costMicros: 10_000,
        tokens: 100,
        progress: 10,
        step: "s",
      },
    ]);
    expect((await db().simulationJob.findUniqueOrThrow({ where: { id } })).costMicros).toBe(80_000n);
    // The stale attempt's end and replays change nothing; the new attempt's end charges its own part.
    const end = { jobId: id, at: new Date().toISOString(), requestId: null, tokens: 300 };
    await applyEvents(stack.env.core, [{ type: "completed", attempt, costMicros: 90_000, ...end }]);
    await applyEvents(stack.env.core, [{ type: "cancelled", attempt: attempt + 1, costMicros: 30_000, ...end }]);
    await applyEvents(stack.env.core, [{ type: "cancelled", attempt: attempt + 1, costMicros: 30_000, ...end }]);
    const ended = await db().simulationJob.findUniqueOrThrow({ where: { id } });
    expect(ended).toMatchObject({ status: "CANCELLED", costMicros: 100_000n, tokensUsed: 1000n });
    const ledger = await db().ledgerEntry.findMany({ where: { jobId: id }, orderBy: { attempt: "asc" } });
    expect(ledger.map((l) => l.costMicros)).toEqual([70_000n, 30_000n]);
    const b = await stack.waitBatch(u.key, res.body.batch_id, (x) => x.completed_at !== null);
    expect(b.cost.actual_cost_usd).toBeCloseTo(0.1, 9);
    expect(await sqlCheck()).toMatchObject({ drift: noDrift, money: { mismatches: [] } });
  });

  it("a batch whose only running job the budget interrupted ends BUDGET_EXHAUSTED", async () => {
    const res = await stack.submitBatch(u.key, {
      simulations: [scripted({ steps: 20, step_ms: 20, cost_usd_per_step: 0.01, estimate_usd: 0.01 })],
      parallel_jobs: 1,
      budget_cap_usd: 0.03,
    });
    expect(res.status).toBe(202);
    const b = await stack.waitBatch(u.key, res.body.batch_id, (x) => x.completed_at !== null, 20_000);
    expect(b).toMatchObject({ status: "FAILED", stop_reason: "BUDGET_EXHAUSTED" });
    expect(b.cost.actual_cost_usd).toBeGreaterThanOrEqual(0.03);
    expect(b.cost.actual_cost_usd).toBeLessThanOrEqual(0.04);
    const job = await db().simulationJob.findUniqueOrThrow({ where: { id: res.body.job_ids[0] } });
    expect(job.status).toBe("CANCELLED");
    expect(job.cancelReason).toMatch(/^budget_exhausted/);
  });

  it("dead-letters an unparseable stream entry, counts it in the metrics, and applies the events around it", async () => {
    const keys = redisKeys(stack.env.prefix);
    const redis = stack.env.core.redis;
    await redis.xadd(keys.events, "*", "e", "{not json");
    const first = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", u.key)
      .send(scripted({ steps: 2, step_ms: 5 }));
    await redis.xadd(keys.events, "*", "other", "field");
    await redis.xadd(keys.events, "*", "e", JSON.stringify({ type: "completed", jobId: 7 }));
    const second = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", u.key)
      .send(scripted({ steps: 2, step_ms: 5 }));
    for (const r of [first, second]) await stack.waitJob(u.key, r.body.job_id, (j) => j.status === "COMPLETED");
    await waitFor(async () => (await redis.xlen(keys.eventsDead)) === 3 || false, { what: "dead letters" });
    const dead = (await redis.xrange(keys.eventsDead, "-", "+")) as [string, string[]][];
    const fields = dead.map(([, f]) => Object.fromEntries(f.reduce<string[][]>((a, v, i) => (i % 2 ? a[a.length - 1]!.push(v) : a.push([v]), a), [])));
    expect(fields[0]).toMatchObject({ error: expect.stringContaining("invalid JSON"), fields: JSON.stringify(["e", "{not json"]) });
    expect(fields[1]!.error).toBe("no event field");
    expect(fields[2]!.error).toMatch(/not a job event/);
    expect(await redis.pttl(keys.eventsDead)).toBeGreaterThan(0);
    const A = { Authorization: `Bearer ${ADMIN}` };
    const ops = await stack.http().get("/admin/operations").set(A);
    expect(ops.body.events).toMatchObject({ dead_lettered: 3, unacknowledged: 0 });
    const metrics = await stack.http().get("/admin/metrics").set(A);
    expect(metrics.text).toMatch(/^simbatch_events_dead_lettered 3$/m);
    expect(stack.reconciler.counters.deadLettered).toBe(3);
  });

  it("gives every key it writes a bounded lifetime (BullMQ's own queue keys aside)", async () => {
    // A capped batch stopped by its budget and a cancelled job leave batch-spend and cancel keys behind.
    const long = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", u.key)
      .send(scripted({ steps: 200, step_ms: 20 }));
    await stack.waitJob(u.key, long.body.job_id, (j) => j.status === "RUNNING");
    await stack.http().post(`/simulations/${long.body.job_id}/cancel`).set("X-API-Key", u.key).send({});
    await stack.waitJob(u.key, long.body.job_id, (j) => j.status === "CANCELLED");
    const keys = await stack.env.core.redis.keys(`${stack.env.prefix}:*`);
    const ours = keys.filter((k) => !k.startsWith(`${stack.env.prefix}:simulations:`) && !k.startsWith(`${stack.env.prefix}:webhooks:`));
    expect(ours).toEqual(
      expect.arrayContaining([`${stack.env.prefix}:events`, `${stack.env.prefix}:workers`, `${stack.env.prefix}:cancel:${long.body.job_id}`]),
    );
    expect(ours.some((k) => k.includes(":batch-spend:"))).toBe(true);
    const ttls = await Promise.all(ours.map(async (k) => [k, await stack.env.core.redis.pttl(k)] as const));
    expect(ttls.filter(([, t]) => t < 0)).toEqual([]);
  });
});

describe("sweep scans rotate past their limit", () => {
  const stack = new Stack({ workers: [] });
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  it("re-checks every in-flight job and open batch across passes, in (created_at, id) order", async () => {
    const u = await stack.env.user("many", "enterprise");
    const batches: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 }), scripted({ steps: 1 })], parallel_jobs: 2 });
      batches.push(res.body.batch_id);
    }
    const db = stack.env.core.db;
    // Drift to repair: each batch's first job started (the batch still reads PENDING); its second job released but lost by BullMQ.
    await db.$executeRaw`UPDATE simulation_jobs SET status = 'RUNNING', attempts = 1, started_at = now(), released_at = now() WHERE batch_index = 0 AND batch_id = ANY(${batches})`;
    await db.$executeRaw`UPDATE simulation_jobs SET released_at = now() WHERE batch_index = 1 AND batch_id = ANY(${batches})`;
    const state = new SweepState();
    const queued = async () =>
      (await Promise.all((await db.simulationJob.findMany({ where: { batchIndex: 1 } })).map((j) => stack.env.core.queue.state(j.id)))).filter(
        (s) => s !== "missing",
      ).length;
    const running = async () => db.batch.count({ where: { id: { in: batches }, status: "RUNNING" } });
    const seen: [number, number][] = [];
    for (let pass = 0; pass < 5; pass++) {
      // releasedGraceMs 0: this is about the scans' rotation; the grace has its own test (recovery).
      await sweep(stack.env.core, { scanLimit: 2, repairAfterMs: 60_000, releasedGraceMs: 0 }, state);
      seen.push([await queued(), await running()]);
    }
    // 10 in-flight jobs, 2 per pass: one released job re-queued per pass; 5 open batches, 2 per pass (then the cursor wraps).
    expect(seen.map(([q]) => q)).toEqual([1, 2, 3, 4, 5]);
    expect(seen.map(([, r]) => r)).toEqual([2, 4, 5, 5, 5]);
    // The RUNNING jobs with no BullMQ job are not re-queued before the repair timeout (their worker may be finishing)...
    const firsts = await db.simulationJob.findMany({ where: { batchIndex: 0 } });
    expect((await Promise.all(firsts.map((j) => stack.env.core.queue.state(j.id)))).every((s) => s === "missing")).toBe(true);
    // ...and are once it has passed (a full page may be followed by an empty one before the cursor wraps).
    for (let pass = 0; pass < 6; pass++) await sweep(stack.env.core, { scanLimit: 2, repairAfterMs: 0 }, state);
    expect((await Promise.all(firsts.map((j) => stack.env.core.queue.state(j.id)))).every((s) => s !== "missing")).toBe(true);
  });
});

describe("integrity constraints", () => {
  const stack = new Stack({ workers: [] });
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  it("refuses orphans and what must never be stored", async () => {
    const u = await stack.env.user("strict", "pro");
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })], parallel_jobs: 1 });
    const job = res.body.job_ids[0] as string;
    const sql = new Client({ connectionString: stack.env.databaseUrl });
    await sql.connect();
    const q = (strings: TemplateStringsArray, ...values: unknown[]) =>
      sql.query(
        strings.reduce((a, s, i) => a + `$${i}` + s),
        values,
      );
    const db = { $executeRaw: q };
    const code = async (p: Promise<unknown>) =>
      p.then(
        () => "ok",
        (e: { code?: string; message?: string }) => e.code ?? String(e.message),
      );
    const FK = "23503";
    const CHECK = "23514";
    expect(await code(db.$executeRaw`INSERT INTO ledger_entries (user_id, period, kind, cost_micros) VALUES (${u.id}, '2026-11', 'CHARGE', 5)`)).toMatch(CHECK);
    expect(
      await code(
        db.$executeRaw`INSERT INTO ledger_entries (user_id, period, kind, job_id, attempt, cost_micros) VALUES (${u.id}, '2026-11', 'CHARGE', ${job}, 1, -5)`,
      ),
    ).toMatch(CHECK);
    expect(await code(db.$executeRaw`INSERT INTO ledger_entries (user_id, period, kind, cost_micros) VALUES ('nobody', '2026-11', 'ADJUSTMENT', -5)`)).toMatch(
      FK,
    );
    expect(
      await code(
        db.$executeRaw`INSERT INTO ledger_entries (user_id, period, kind, job_id, attempt) VALUES (${u.id}, '2026-11', 'CHARGE', 'sim_000000000000', 1)`,
      ),
    ).toMatch(FK);
    expect(await code(db.$executeRaw`UPDATE simulation_jobs SET cost_micros = -1 WHERE id = ${job}`)).toMatch(CHECK);
    expect(await code(db.$executeRaw`UPDATE simulation_jobs SET progress_percent = 100.5 WHERE id = ${job}`)).toMatch(CHECK);
    expect(await code(db.$executeRaw`UPDATE simulation_jobs SET attempts = -1 WHERE id = ${job}`)).toMatch(CHECK);
    expect(await code(db.$executeRaw`UPDATE simulation_jobs SET estimated_cost_micros = -1 WHERE id = ${job}`)).toMatch(CHECK);
    expect(await code(db.$executeRaw`UPDATE simulation_jobs SET owner_id = 'nobody' WHERE id = ${job}`)).toMatch(FK);
    expect(await code(db.$executeRaw`UPDATE simulation_jobs SET batch_id = 'bat_missing' WHERE id = ${job}`)).toMatch(FK);
    expect(await code(db.$executeRaw`INSERT INTO simulation_results (job_id, attempt, result) VALUES ('sim_000000000000', 1, '{}')`)).toMatch(FK);
    expect(
      await code(db.$executeRaw`INSERT INTO simulation_exports (job_id, format, content_type, content) VALUES ('sim_000000000000', 'json', 'x', '\\x00')`),
    ).toMatch(FK);
    expect(await code(db.$executeRaw`UPDATE batches SET budget_cap_micros = -1 WHERE id = ${res.body.batch_id}`)).toMatch(CHECK);
    expect(await code(db.$executeRaw`DELETE FROM users WHERE id = ${u.id}`)).toMatch(FK);
    // A valid adjustment (a credit may be negative) is accepted.
    expect(
      await code(
        db.$executeRaw`INSERT INTO ledger_entries (user_id, period, kind, cost_micros, reason) VALUES (${u.id}, '2026-11', 'ADJUSTMENT', -5, 'credit')`,
      ),
    ).toBe("ok");
    await sql.end();
  });
});
