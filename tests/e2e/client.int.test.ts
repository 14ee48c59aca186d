import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { waitFor } from "@simbatch/testing";
import { BatchTooLarge, Forbidden, InvalidState, NotFound, Simbatch, ValidationError, type Batch } from "../../packages/client/src/index.ts";
import { Stack, scripted } from "../support/stack.ts";

/** The typed client against the real service (API on a port, workers, reconciler, Postgres, Redis). */
describe("@simbatch/client against the service", () => {
  const stack = new Stack({ workers: [4], webhookAllowPrivate: true });
  let client: Simbatch;
  let other: Simbatch;
  let free: Simbatch;
  let url: string;

  beforeAll(async () => {
    await stack.start();
    url = await stack.serve();
    client = new Simbatch({ baseUrl: url, apiKey: (await stack.env.user("client-pro", "pro")).key });
    other = new Simbatch({ baseUrl: url, apiKey: (await stack.env.user("client-other", "pro")).key });
    free = new Simbatch({ baseUrl: url, apiKey: (await stack.env.user("client-free", "free")).key });
  });
  afterAll(() => stack.stop());

  it("creates a batch and follows its event stream to the end", async () => {
    const created = await client.batches.create({ simulations: [scripted({ steps: 3, step_ms: 30 }), scripted({ steps: 5, step_ms: 30 })] });
    expect(created.status).toBe("PENDING");
    const events = [];
    for await (const e of client.streamBatch(created.batch_id)) events.push(e);
    const batches = events.filter((e) => e.type === "batch").map((e) => e.data as Batch);
    const jobs = events.filter((e) => e.type === "job");
    expect(batches[batches.length - 1]).toMatchObject({ status: "COMPLETED", progress: { completed_jobs: 2 } });
    expect(batches[batches.length - 1]!.completed_at).not.toBeNull();
    expect(jobs.some((e) => e.data.status === "COMPLETED")).toBe(true);
    expect(events.every((e) => typeof e.id === "string")).toBe(true);
  });

  it("waitForBatch reports progress that only moves forward and returns the finished batch", async () => {
    const created = await client.batches.create({ simulations: [1, 2, 3].map((s) => scripted({ steps: 4, step_ms: 20, seed: s })), parallel_jobs: 1 });
    const seen: number[] = [];
    const done = await client.waitForBatch(created.batch_id, { onProgress: (b) => seen.push(b.progress.progress_percent) });
    expect(done.status).toBe("COMPLETED");
    expect(seen[seen.length - 1]).toBe(100);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });

  it("a create sent twice with one idempotency key makes one batch", async () => {
    const body = { simulations: [scripted({ steps: 1 })], metadata: { run: "idem" } };
    const a = await client.batches.create(body, { idempotencyKey: "client-e2e-1" });
    const b = await client.batches.create(body, { idempotencyKey: "client-e2e-1" });
    expect(b.batch_id).toBe(a.batch_id);
    await expect(client.batches.create({ simulations: [scripted({ steps: 2 })] }, { idempotencyKey: "client-e2e-1" })).rejects.toMatchObject({
      code: "IdempotencyKeyReused",
      status: 422,
    });
  });

  it("dry run, pause and resume", async () => {
    const dry = await client.batches.dryRun({ simulations: [scripted({ steps: 1, estimate_usd: 0.2 })] });
    expect(dry).toMatchObject({ dry_run: true, total_jobs: 1, job_estimates_usd: [0.2] });
    const b = await client.batches.create({ simulations: [scripted({ steps: 30, step_ms: 50 }), scripted({ steps: 1 })], parallel_jobs: 1 });
    expect((await client.batches.pause(b.batch_id)).paused).toBe(true);
    expect((await client.batches.get(b.batch_id)).paused).toBe(true);
    expect((await client.batches.resume(b.batch_id)).paused).toBe(false);
    const cancelled = await client.batches.cancel(b.batch_id, { reason: "done testing" });
    expect(cancelled).toMatchObject({ status: "CANCELLED", stop_reason: "CANCELLED_BY_USER", cancel_reason: "done testing" });
    await expect(client.batches.cancel(b.batch_id)).rejects.toBeInstanceOf(InvalidState);
  });

  it("listBatches and listJobs walk every page", async () => {
    const mine = new Simbatch({ baseUrl: url, apiKey: (await stack.env.user("client-lister", "pro")).key });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.unshift((await mine.batches.create({ simulations: [scripted({ steps: 1 })] })).batch_id);
    const listed: string[] = [];
    for await (const b of mine.listBatches({ page_size: 2 })) listed.push(b.batch_id);
    expect(listed).toEqual(ids);
    const jobs: string[] = [];
    for await (const j of mine.listJobs({ page_size: 3 })) jobs.push(j.job_id);
    expect(jobs).toHaveLength(5);
    expect(new Set(jobs).size).toBe(5);
  });

  it("results as an async iterator, the report, an export as a stream", async () => {
    const b = await client.batches.create({ simulations: [1, 2].map((seed) => ({ template_id: "board_meeting", config: { seed } })) });
    const done = await client.waitForBatch(b.batch_id);
    const lines = [];
    for await (const line of client.batches.results(b.batch_id)) lines.push(line);
    expect(lines.map((l) => [l.index, l.job_id, l.status])).toEqual(done.job_ids.map((id, i) => [i, id, "COMPLETED"]));
    const report = await client.batches.report(b.batch_id);
    expect(report.cost_usd.total).toBe(done.cost.actual_cost_usd);
    expect(await client.batches.report(b.batch_id, { format: "csv" })).toMatch(/^index,job_id,status/);
    const res = await client.simulations.export(done.job_ids[0]!, "markdown");
    expect(res.headers.get("content-type")).toContain("text/markdown");
    expect(await res.text()).toMatch(/^#/);
    const result = await client.simulations.result(done.job_ids[0]!);
    expect(result.job.job_id).toBe(done.job_ids[0]);
  });

  it("a single job: create, its event stream, stats", async () => {
    const job = await client.simulations.create({ template_id: "test/scripted", config: { steps: 3, step_ms: 20 } });
    const statuses: string[] = [];
    for await (const e of client.simulations.events(job.job_id)) statuses.push(e.data.status);
    expect(statuses[statuses.length - 1]).toBe("COMPLETED");
    const stats = await client.simulations.stats();
    expect(stats.completed_jobs).toBeGreaterThan(0);
  });

  it("webhooks: the signing secret, rotation, and the deliveries of a batch's end", async () => {
    const got: string[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        got.push(body);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    try {
      const secret = await client.webhooks.secret();
      expect(secret.secret).toMatch(/^whsec_/);
      expect((await client.webhooks.secret()).secret).toBe(secret.secret);
      expect((await client.webhooks.rotateSecret()).secret).not.toBe(secret.secret);
      const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const b = await client.batches.create({ simulations: [scripted({ steps: 1 })], webhook_url: hook });
      expect(b.webhook_url).toBe(hook);
      await client.waitForBatch(b.batch_id);
      const { deliveries } = await waitFor(async () => {
        const d = await client.batches.webhookDeliveries(b.batch_id);
        return d.deliveries.some((x) => x.delivered) ? d : false;
      });
      expect(deliveries[0]).toMatchObject({ type: "batch.completed", delivered: true, status_code: 200 });
      expect(JSON.parse(got[0]!)).toMatchObject({ type: "batch.completed", batch: { batch_id: b.batch_id } });
    } finally {
      receiver.close();
    }
  });

  it("throws the contract's errors as their classes", async () => {
    await expect(client.batches.get("batch_000000000000")).rejects.toBeInstanceOf(NotFound);
    const mine = await client.batches.create({ simulations: [scripted({ steps: 1 })] });
    await expect(other.batches.get(mine.batch_id)).rejects.toBeInstanceOf(Forbidden);
    const invalid = (await client.batches
      .create({ simulations: [{ template_id: "board_meeting", entity_count: 21 }] })
      .catch((e: unknown) => e)) as ValidationError;
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid.detail.map((d) => d.path)).toEqual(["simulations.0.entity_count"]);
    expect(invalid.requestId).toMatch(/\S/);
    const large = (await free.batches
      .create({ simulations: Array.from({ length: 6 }, () => scripted({ steps: 1 })) })
      .catch((e: unknown) => e)) as BatchTooLarge;
    expect(large).toBeInstanceOf(BatchTooLarge);
    expect([large.status, large.tier, large.max_batch_size]).toEqual([400, "free", 5]);
  });
});
