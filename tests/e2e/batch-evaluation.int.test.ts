import { claimJobs, evaluateBatches, SideEffects, storeResults } from "@simbatch/core";
import { inRawTransaction } from "@simbatch/db";
import { waitFor } from "@simbatch/testing";
import { Client } from "pg";
import { Stack, scripted } from "../support/stack.ts";

/**
 * A batch evaluation that changes nothing takes no lock on the batch row (workers
 * ending its jobs and releases count on that row meanwhile); one that moves the
 * batch locks it and decides again from the locked row.
 */
describe("batch evaluation locks only batches that move", () => {
  // No workers: jobs move only when the test moves them.
  const stack = new Stack({ workers: [] });
  let holder: Client;
  let key: string;

  beforeAll(async () => {
    await stack.start();
    key = (await stack.env.user("evaluated", "enterprise")).key;
    holder = new Client({ connectionString: stack.env.databaseUrl });
    await holder.connect();
  });
  afterAll(async () => {
    await holder?.end();
    await stack.stop();
  });

  const db = () => stack.env.core.db;
  /** Evaluates a batch in a transaction of its own; with `lockTimeout`, a wait for a lock longer than that fails it. */
  const evaluate = (batchId: string, lockTimeout?: string) =>
    inRawTransaction(db(), async (tx) => {
      if (lockTimeout) await tx.$executeRaw`SELECT set_config('lock_timeout', ${lockTimeout}, true)`;
      await evaluateBatches(stack.env.core, tx, [batchId], new SideEffects());
    });
  const end = (ids: string[]) =>
    storeResults(
      db(),
      ids.map((jobId) => ({ jobId, attempt: 1, result: { ok: true }, exports: [], costMicros: 10, tokens: 1 })),
    );
  /**
   * Whether some backend waits for a lock in an evaluation's locked read (asked on a connection of its own: inside
   * the holder's transaction pg_stat_activity would keep answering from its first look).
   */
  const evaluationWaits = async () =>
    (
      await db().$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM batches b JOIN users u%FOR UPDATE OF b%'`
    )[0]!.n > 0;

  it("leaves a running batch with jobs to come unlocked, and locks it to finish it", async () => {
    const res = await stack.submitBatch(key, { simulations: Array.from({ length: 3 }, () => scripted({ steps: 1 })), parallel_jobs: 3 });
    expect(res.status).toBe(202);
    const batchId = res.body.batch_id as string;
    const ids = res.body.job_ids as string[];
    await db().$executeRaw`UPDATE simulation_jobs SET released_at = now() WHERE id = ANY(${ids}::text[])`;
    await claimJobs(db(), ids);
    expect((await end(ids.slice(0, 1))).ended.size).toBe(1);

    // Another transaction holds the batch row (as a worker's end statement or a release would).
    await holder.query("BEGIN");
    await holder.query("SELECT 1 FROM batches WHERE id = $1 FOR NO KEY UPDATE", [batchId]);
    try {
      // One job of three ended: nothing to change, so the evaluation returns without waiting for the row.
      await evaluate(batchId, "3s");
      expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).status).toBe("RUNNING");
    } finally {
      await holder.query("COMMIT");
    }

    // Every job ended: the batch must move, so its evaluation waits for the row, then finishes it.
    await end(ids.slice(1));
    await holder.query("BEGIN");
    await holder.query("SELECT 1 FROM batches WHERE id = $1 FOR NO KEY UPDATE", [batchId]);
    let finishing: Promise<void>;
    try {
      finishing = evaluate(batchId);
      await waitFor(evaluationWaits, { timeoutMs: 10_000, what: "the evaluation to wait for the batch row" });
      expect((await db().batch.findUniqueOrThrow({ where: { id: batchId } })).completedAt).toBeNull();
    } finally {
      await holder.query("COMMIT");
    }
    await finishing;
    expect(await db().batch.findUniqueOrThrow({ where: { id: batchId } })).toMatchObject({ status: "COMPLETED", completedJobs: 3 });
  });
});
