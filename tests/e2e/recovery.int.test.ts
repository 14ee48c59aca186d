import { RELEASED_MISSING_GRACE_MS } from "@simbatch/core";
import { waitFor } from "@simbatch/testing";
import { Stack, scripted } from "../support/stack.ts";

/** Postgres is the truth: what Redis loses, the sweep puts back. */
describe("sweep repairs drift between Postgres and Redis", () => {
  const stack = new Stack({ workers: [] });
  let alice: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    alice = await stack.env.user("alice", "pro");
  });
  afterAll(() => stack.stop());

  it("holds jobs in Postgres while no worker is up, then runs them when one starts", async () => {
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", alice.key)
      .send(scripted({ steps: 2 }));
    expect(res.status).toBe(202);
    const row = await stack.env.core.db.simulationJob.findUniqueOrThrow({ where: { id: res.body.job_id } });
    expect(row.releasedAt).toBeNull();
    const worker = await stack.addWorker(1);
    await stack.waitJob(alice.key, res.body.job_id, (j) => j.status === "COMPLETED");
    await worker.stop();
    stack.workers = stack.workers.filter((w) => w !== worker);
  });

  it("re-enqueues a released job whose BullMQ job was lost", async () => {
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", alice.key)
      .send(scripted({ steps: 2 }));
    const jobId: string = res.body.job_id;
    // The dispatcher marked it released but the enqueue never reached Redis.
    await stack.env.core.db.simulationJob.update({ where: { id: jobId }, data: { releasedAt: new Date() } });
    expect(await stack.env.core.queue.state(jobId)).toBe("missing");
    await stack.addWorker(1);
    // The first sweep notes it missing; one RELEASED_MISSING_GRACE_MS later (a claim in flight would have committed) it is re-queued.
    const first = await stack.reconciler.sweepOnce();
    expect(first.requeued).toBe(0);
    const started = Date.now();
    await waitFor(async () => (await stack.reconciler.sweepOnce()).requeued === 1, { what: "the re-queue", intervalMs: 200 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(RELEASED_MISSING_GRACE_MS - 250);
    const job = await stack.waitJob(alice.key, jobId, (j) => j.status === "COMPLETED");
    expect(job.attempts).toBe(1);
    const charges = await stack.env.core.db.ledgerEntry.count({ where: { jobId } });
    expect(charges).toBe(1);
    // A second sweep finds nothing to repair.
    expect((await stack.reconciler.sweepOnce()).requeued).toBe(0);
  });
});
