import { randomBytes } from "node:crypto";
import { applyEvents, ClaimBatcher, claimJob, claimJobs, recordOutcomes, ResultWriter, storeResult, storeResults, type CompletedEnd } from "@simbatch/core";
import type { JobEvent } from "@simbatch/contracts";
import type { Db } from "@simbatch/db";
import { waitFor } from "@simbatch/testing";
import { Client } from "pg";
import { Stack, scripted } from "../support/stack.ts";

/** A Db whose raw statements are counted. */
function counting(db: Db): { db: Db; statements: () => number } {
  let n = 0;
  // Statements made in a transaction (the claim runs in one of its own) go through the transaction's client: counted too.
  const wrap = <T extends object>(client: T): T =>
    new Proxy(client, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if ((prop === "$queryRaw" || prop === "$executeRaw") && typeof v === "function") {
          return (...args: unknown[]) => {
            n++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        if (prop === "$transaction" && typeof v === "function") {
          return (fn: unknown, ...rest: unknown[]) =>
            (v as (...a: unknown[]) => unknown).apply(target, [
              typeof fn === "function" ? (tx: object) => (fn as (t: object) => unknown)(wrap(tx)) : fn,
              ...rest,
            ]);
        }
        return v;
      },
    });
  return { db: wrap(db), statements: () => n };
}

/**
 * The worker's hot path in Postgres: claims of a tick share one statement that
 * also starts the batch; results are written only for the attempt that holds the job.
 */
describe("claims and results", () => {
  // No workers: nothing is released unless a test releases it.
  const stack = new Stack({ workers: [] });
  let u: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    u = await stack.env.user("claimer", "enterprise");
  });
  afterAll(() => stack.stop());

  const db = () => stack.env.core.db;

  async function releasedBatch(n: number): Promise<{ batchId: string; jobIds: string[] }> {
    const res = await stack.submitBatch(u.key, { simulations: Array.from({ length: n }, () => scripted({ steps: 1 })), parallel_jobs: n });
    expect(res.status).toBe(202);
    const jobIds = res.body.job_ids as string[];
    await db().$executeRaw`UPDATE simulation_jobs SET released_at = now() WHERE id = ANY(${jobIds}::text[]) AND released_at IS NULL`;
    return { batchId: res.body.batch_id, jobIds };
  }

  it("claims a tick's jobs in one statement, each as attempt 1, and moves their batch to RUNNING once", async () => {
    const { batchId, jobIds } = await releasedBatch(12);
    const before = await db().batch.findUniqueOrThrow({ where: { id: batchId } });
    expect(before.status).toBe("PENDING");
    expect(before.startedAt).toBeNull();

    const c = counting(db());
    const started: string[] = [];
    const claims = new ClaimBatcher(c.db, (bs) => started.push(...bs.map((b) => b.batchId)));
    const results = await Promise.all(jobIds.map((id) => claims.claim(id)));
    expect(c.statements()).toBe(1);
    for (const [i, r] of results.entries()) {
      expect(r.kind).toBe("claimed");
      if (r.kind === "claimed") expect(r.job).toMatchObject({ id: jobIds[i], attempt: 1, batchId });
    }
    expect(started).toEqual([batchId]);
    const after = await db().batch.findUniqueOrThrow({ where: { id: batchId } });
    expect(after.status).toBe("RUNNING");
    expect(after.startedAt).not.toBeNull();
    const rows = await stack.batchRows(batchId);
    for (const r of rows) expect(r).toMatchObject({ status: "RUNNING", attempts: 1, currentStep: "starting" });

    // Redelivered (a worker died): each claim is a new attempt; the batch is already RUNNING.
    const again = await Promise.all(jobIds.map((id) => claims.claim(id)));
    expect(c.statements()).toBe(2);
    expect(again.map((r) => (r.kind === "claimed" ? r.job.attempt : 0))).toEqual(Array(12).fill(2));
    expect(started).toEqual([batchId]);
    expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).startedAt).toEqual(after.startedAt);
  });

  it("claims without writing the owner's counter row, so a claim never waits for a release or a job end holding it", async () => {
    const { jobIds } = await releasedBatch(4);
    const counterRow = async () =>
      (await db().$queryRaw<{ v: string; active_jobs: number }[]>`SELECT xmin::text AS v, active_jobs FROM user_counters WHERE user_id = ${u.id}`)[0];
    const before = await counterRow();
    // Another transaction holds the row, as a dispatch pass or an event read does until it commits.
    const holder = new Client({ connectionString: stack.env.databaseUrl });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM user_counters WHERE user_id = $1 FOR UPDATE", [u.id]);
      const claimed = await Promise.race([
        claimJobs(db(), jobIds).then((r) => [...r.results.values()].filter((x) => x.kind === "claimed").length),
        new Promise<string>((resolve) => setTimeout(() => resolve("still waiting for the counter row"), 5_000).unref()),
      ]);
      expect(claimed).toBe(4);
    } finally {
      await holder.query("ROLLBACK");
      await holder.end();
    }
    // The release counted these jobs as active; starting them changes no count.
    expect(await counterRow()).toEqual(before);
  });

  it("starts a batch whose row another transaction held during the claim, once that transaction ends", async () => {
    const { batchId, jobIds } = await releasedBatch(1);
    const holder = new Client({ connectionString: stack.env.databaseUrl });
    await holder.connect();
    try {
      // Stands for a reconciler evaluating the batch (or a cancel) while the first job is claimed.
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM batches WHERE id = $1 FOR UPDATE", [batchId]);
      const claim = claimJobs(db(), jobIds);
      await waitFor(async () => (await db().simulationJob.findUniqueOrThrow({ where: { id: jobIds[0]! } })).status === "RUNNING", {
        what: "the claim's commit",
      });
      // The claim did not wait for the batch row, and its job already runs.
      expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).status).toBe("PENDING");
      await holder.query("COMMIT");
      const { startedBatches } = await claim;
      expect(startedBatches).toEqual([batchId]);
      const [batch, job] = await Promise.all([
        db().batch.findUniqueOrThrow({ where: { id: batchId } }),
        db().simulationJob.findUniqueOrThrow({ where: { id: jobIds[0]! } }),
      ]);
      expect(batch.status).toBe("RUNNING");
      expect(batch.startedAt).toEqual(job.startedAt);
    } finally {
      await holder.end();
    }
  });

  it("answers why a job was not claimed, with one lookup for the tick's misses", async () => {
    const { batchId, jobIds } = await releasedBatch(3);
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })] });
    const unreleased = res.body.job_ids[0] as string;
    // A running job whose cancel was requested while its worker was gone.
    await claimJob(db(), jobIds[1]!);
    await db().$executeRaw`UPDATE simulation_jobs SET cancel_requested = true WHERE id = ${jobIds[1]!}`;

    const c = counting(db());
    const claims = new ClaimBatcher(c.db);
    const [ok, cancelled, notReleased, missing] = await Promise.all([jobIds[0]!, jobIds[1]!, unreleased, "sim_nope"].map((id) => claims.claim(id)));
    expect(c.statements()).toBe(2);
    expect(ok).toMatchObject({ kind: "claimed", job: { id: jobIds[0], attempt: 1 } });
    expect(cancelled).toEqual({ kind: "cancel-requested", jobId: jobIds[1], attempt: 1, requestId: expect.any(String) });
    expect(notReleased).toEqual({ kind: "not-runnable", status: "PENDING" });
    expect(missing).toEqual({ kind: "not-runnable", status: null });
    expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).status).toBe("RUNNING");
  });

  it("claims a job asked for twice in one tick once per ask, in turn", async () => {
    const { jobIds } = await releasedBatch(1);
    const claims = new ClaimBatcher(db());
    const [a, b] = await Promise.all([claims.claim(jobIds[0]!), claims.claim(jobIds[0]!)]);
    expect([a, b].map((r) => (r.kind === "claimed" ? r.job.attempt : 0))).toEqual([1, 2]);
  });

  it("does not start a batch that was cancelled, and leaves single jobs' claims alone", async () => {
    const { batchId, jobIds } = await releasedBatch(2);
    await db().$executeRaw`UPDATE batches SET status = 'CANCELLED' WHERE id = ${batchId}`;
    const { results, startedBatches } = await claimJobs(db(), jobIds);
    expect(startedBatches).toEqual([]);
    expect([...results.values()].every((r) => r.kind === "claimed")).toBe(true);
    expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).status).toBe("CANCELLED");
  });

  it("ends a completed attempt with its charge, result and exports only for the attempt that holds the job", async () => {
    const { batchId, jobIds } = await releasedBatch(2);
    const [id, other] = jobIds as [string, string];
    await claimJobs(db(), [id, other]); // attempt 1 of both
    await claimJob(db(), id); // the job was redelivered: attempt 2 holds it
    const pdf = Buffer.concat([Buffer.from("%PDF-1.4\n"), randomBytes(4096), Buffer.from([0, 255, 0, 92, 39])]);
    const exportsOf = (tag: string) => [
      { format: "json", contentType: "application/json", content: Buffer.from(JSON.stringify({ tag })) },
      { format: "pdf", contentType: "application/pdf", content: pdf },
    ];

    // Attempt 1 finishing late is refused, in the same statement as another job's end that succeeds.
    const c = counting(db());
    const ends: CompletedEnd[] = [];
    const writer = new ResultWriter(c.db, (e) => ends.push(...e));
    const at = new Date();
    const [stale, fresh] = await Promise.all([
      writer.store({ jobId: id, attempt: 1, result: { tag: "stale" }, exports: exportsOf("stale"), costMicros: 7, tokens: 1, at }),
      writer.store({ jobId: other, attempt: 1, result: { tag: "other" }, exports: exportsOf("other"), costMicros: 30_000, tokens: 12, at }),
    ]);
    expect(c.statements()).toBe(1);
    expect([stale, fresh]).toEqual(["stale", "ended"]);
    expect(ends).toEqual([{ jobId: other, attempt: 1, batchId, templateId: "test/scripted", durationSeconds: expect.any(Number) }]);
    expect(await db().simulationResult.findUnique({ where: { jobId: id } })).toBeNull();
    expect(await db().simulationExport.count({ where: { jobId: id } })).toBe(0);
    // The one statement ended the fresh attempt and charged it; the stale one is untouched and uncharged.
    expect(await db().simulationJob.findUniqueOrThrow({ where: { id: other } })).toMatchObject({
      status: "COMPLETED",
      completedAt: at,
      costMicros: 30_000n,
      tokensUsed: 12n,
      progressPercent: 100,
      currentStep: "completed",
    });
    expect(await db().simulationJob.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: "RUNNING", attempts: 2, completedAt: null });
    expect(await db().ledgerEntry.findMany({ where: { jobId: { in: [id, other] } }, select: { jobId: true, attempt: true, costMicros: true } })).toEqual([
      { jobId: other, attempt: 1, costMicros: 30_000n },
    ]);
    expect(await db().jobAttemptOutcome.count({ where: { jobId: { in: [id, other] } } })).toBe(0);

    // Attempt 2 ends; bytes and text round-trip exactly (they travel as array elements: quotes, backslashes, braces, commas).
    const second = 'second: "quoted", \\back\\slash, {braces}, NULL, é ✓\n';
    expect(await storeResult(db(), id, 2, { tag: second }, exportsOf(second))).toBe(true);
    const row = await db().simulationResult.findUniqueOrThrow({ where: { jobId: id } });
    expect(row).toMatchObject({ attempt: 2, result: { tag: second } });
    const stored = await db().simulationExport.findUniqueOrThrow({ where: { jobId_format: { jobId: id, format: "pdf" } } });
    expect(Buffer.from(stored.content).equals(pdf)).toBe(true);
    expect(stored.contentType).toBe("application/pdf");
    expect((await db().simulationJob.findUniqueOrThrow({ where: { id } })).status).toBe("COMPLETED");

    // Attempt 1 again, or attempt 2 replayed: refused (the job has ended), nothing overwritten or charged twice.
    expect(await storeResult(db(), id, 1, { tag: "stale" }, exportsOf("stale"))).toBe(false);
    expect(await storeResult(db(), id, 2, { tag: "replay" }, exportsOf("replay"), { costMicros: 99, tokens: 9 })).toBe(false);
    expect((await db().simulationResult.findUniqueOrThrow({ where: { jobId: id } })).result).toEqual({ tag: second });
    const json = await db().simulationExport.findUniqueOrThrow({ where: { jobId_format: { jobId: id, format: "json" } } });
    expect(JSON.parse(Buffer.from(json.content).toString())).toEqual({ tag: second });
    expect(await db().ledgerEntry.count({ where: { jobId: id } })).toBe(1);

    // Even were the job row to say RUNNING at attempt 1 again, a stored later attempt's result is never replaced by an earlier one.
    await db().$executeRaw`UPDATE simulation_jobs SET status = 'RUNNING', attempts = 1, completed_at = NULL WHERE id = ${id}`;
    await storeResults(db(), [{ jobId: id, attempt: 1, result: { tag: "older" }, exports: exportsOf("older") }]);
    expect((await db().simulationResult.findUniqueOrThrow({ where: { jobId: id } })).attempt).toBe(2);

    // A later attempt replaces the exports of an earlier one in place (same formats).
    await db().$executeRaw`UPDATE simulation_jobs SET status = 'RUNNING', attempts = 3, completed_at = NULL WHERE id = ${id}`;
    expect(await storeResult(db(), id, 3, { tag: "third" }, exportsOf("third"))).toBe(true);
    expect(await db().simulationExport.count({ where: { jobId: id } })).toBe(2);
    const third = await db().simulationExport.findUniqueOrThrow({ where: { jobId_format: { jobId: id, format: "json" } } });
    expect(JSON.parse(Buffer.from(third.content).toString())).toEqual({ tag: "third" });
  });

  it("ends a completion the reconciler hears of without the ended flag (a worker of an earlier release), once", async () => {
    const { batchId, jobIds } = await releasedBatch(1);
    const id = jobIds[0]!;
    await claimJob(db(), id);
    const event: JobEvent = { type: "completed", jobId: id, attempt: 1, at: new Date().toISOString(), requestId: null, costMicros: 20_000, tokens: 5 };
    expect((await applyEvents(stack.env.core, [event])).applied).toBe(1);
    expect((await applyEvents(stack.env.core, [event])).applied).toBe(0);
    expect(await db().simulationJob.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: "COMPLETED", costMicros: 20_000n });
    expect(await db().ledgerEntry.count({ where: { jobId: id } })).toBe(1);
    expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).status).toBe("COMPLETED");
  });

  it("refuses a result for an attempt whose failure or interruption its worker recorded", async () => {
    const { jobIds } = await releasedBatch(1);
    await claimJob(db(), jobIds[0]!);
    expect(
      await recordOutcomes(db(), [{ jobId: jobIds[0]!, attempt: 1, status: "FAILED", costMicros: 0, tokens: 0, errorMessage: "boom", at: new Date() }]),
    ).toEqual(new Set([`${jobIds[0]!}:1`]));
    expect(await storeResult(db(), jobIds[0]!, 1, { x: 1 }, [])).toBe(false);
    expect((await db().simulationJob.findUniqueOrThrow({ where: { id: jobIds[0]! } })).status).toBe("RUNNING");
  });

  it("refuses a result once the job has ended", async () => {
    const { jobIds } = await releasedBatch(1);
    await claimJob(db(), jobIds[0]!);
    await db().$executeRaw`UPDATE simulation_jobs SET status = 'CANCELLED', completed_at = now() WHERE id = ${jobIds[0]!}`;
    expect(await storeResult(db(), jobIds[0]!, 1, { x: 1 }, [])).toBe(false);
  });
});
