import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { beginDelivery, finishDelivery, UNANSWERED_ATTEMPT } from "@simbatch/core";
import { waitFor } from "@simbatch/testing";
import { Stack, scripted } from "../support/stack.ts";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on a local port that answers each request with the next scripted status (then 200). */
async function receiver(statuses: number[] = []) {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 200;
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => server.close() };
}

/** Contract: Batch control → Webhooks. */
describe("webhooks", () => {
  const stack = new Stack({ workers: [4], webhookAllowPrivate: true, webhookRetryBaseMs: 20, webhookTimeoutMs: 1_000 });
  let u: { id: string; key: string };
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    await stack.start();
    u = await stack.env.user("hooked", "pro");
  });
  afterAll(async () => {
    for (const c of closers) c();
    await stack.stop();
  });

  const deliveries = async (batchId: string) =>
    (await stack.http().get(`/simulations/batch/${batchId}/webhook-deliveries`).set("X-API-Key", u.key)).body.deliveries as Record<string, any>[];

  it("keeps one signing secret per user, created on first request; rotation gives a new one", async () => {
    const a = await stack.http().get("/webhooks/secret").set("X-API-Key", u.key);
    expect(a.status).toBe(200);
    expect(a.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(a.body.secret.slice(6), "base64")).toHaveLength(32);
    const b = await stack.http().get("/webhooks/secret").set("X-API-Key", u.key);
    expect(b.body.secret).toBe(a.body.secret);
    const rotated = await stack.http().post("/webhooks/secret/rotate").set("X-API-Key", u.key);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(a.body.secret);
    expect((await stack.http().get("/webhooks/secret").set("X-API-Key", u.key)).body.secret).toBe(rotated.body.secret);
  });

  it("delivers the batch's end, signed per Standard Webhooks, retrying a receiver that fails twice", async () => {
    const r = await receiver([500, 503]);
    closers.push(r.close);
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 2 }), scripted({ steps: 1, fail_at_step: 1 })], webhook_url: r.url });
    expect(res.status).toBe(202);
    expect(res.body.webhook_url).toBe(r.url);
    await waitFor(() => r.got.length >= 3, { what: "three delivery attempts", timeoutMs: 20_000 });
    const secret = (await stack.http().get("/webhooks/secret").set("X-API-Key", u.key)).body.secret;
    const ids = new Set(r.got.map((g) => g.headers["webhook-id"]));
    expect(ids.size).toBe(1);
    const last = r.got[2]!;
    const verified = new Webhook(secret).verify(last.body, last.headers as Record<string, string>) as Record<string, any>;
    expect(verified.type).toBe("batch.partial");
    expect(verified.batch).toMatchObject({ batch_id: res.body.batch_id, status: "PARTIAL", webhook_url: r.url });
    expect(verified.batch.completed_at).not.toBeNull();
    expect(typeof verified.created_at).toBe("string");
    expect(Math.abs(Number(last.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    await waitFor(async () => (await deliveries(res.body.batch_id)).length === 3, { what: "the delivery log" });
    const log = await deliveries(res.body.batch_id);
    expect(log.map((d) => [d.attempt, d.status_code, d.delivered])).toEqual([
      [1, 500, false],
      [2, 503, false],
      [3, 200, true],
    ]);
    expect(log[0]!.error).toContain("500");
    expect(log.every((d) => d.webhook_id === [...ids][0] && d.type === "batch.partial")).toBe(true);
  });

  it("signs with the previous secret too for a while after a rotation", async () => {
    const old = (await stack.http().get("/webhooks/secret").set("X-API-Key", u.key)).body.secret;
    const fresh = (await stack.http().post("/webhooks/secret/rotate").set("X-API-Key", u.key)).body.secret;
    const r = await receiver();
    closers.push(r.close);
    await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })], webhook_url: r.url });
    await waitFor(() => r.got.length >= 1, { what: "a delivery" });
    const { body, headers } = r.got[0]!;
    expect(String(headers["webhook-signature"]).split(" ")).toHaveLength(2);
    for (const s of [old, fresh]) expect(new Webhook(s).verify(body, headers as Record<string, string>)).toMatchObject({ type: "batch.completed" });
  });

  it("gives up after 8 attempts without holding up the batch or other deliveries", async () => {
    const dead = await receiver(Array(20).fill(500));
    const good = await receiver();
    closers.push(dead.close, good.close);
    const a = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })], webhook_url: dead.url });
    const b = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })], webhook_url: good.url });
    const done = await stack.waitBatch(u.key, a.body.batch_id, (x) => x.completed_at !== null);
    expect(done.status).toBe("COMPLETED");
    await waitFor(() => good.got.length === 1, { what: "the healthy receiver's delivery" });
    await waitFor(async () => (await deliveries(a.body.batch_id)).length === 8, { what: "eight attempts", timeoutMs: 30_000 });
    const log = await deliveries(a.body.batch_id);
    expect(log.map((d) => d.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(log.every((d) => !d.delivered)).toBe(true);
    expect(dead.got).toHaveLength(8);
    expect((await deliveries(b.body.batch_id)).map((d) => d.delivered)).toEqual([true]);
  });

  it("survives a reconciler restart between attempts, and the sweep enqueues an end a crash left owed", async () => {
    const r = await receiver([500]);
    closers.push(r.close);
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })], webhook_url: r.url });
    const id = res.body.batch_id;
    await waitFor(async () => (await deliveries(id)).length >= 1, { what: "the first attempt's log row" });
    await stack.reconciler.stop();
    await stack.restartReconciler();
    await waitFor(() => r.got.length >= 2, { what: "the retry after the restart", timeoutMs: 20_000 });
    expect(r.got[1]!.headers["webhook-id"]).toBe(r.got[0]!.headers["webhook-id"]);
    // A crash after the end's commit and before the enqueue: nothing in the queue, the row still owed.
    await waitFor(async () => (await stack.env.core.webhooks.queue.getJobState(`msg_${id}`)) === "completed", { what: "the delivery job's end" });
    await stack.env.core.webhooks.queue.remove(`msg_${id}`);
    // Such a crash comes before any attempt, so its log is empty too (a logged delivery is never sent again).
    await stack.env.core.db.$executeRaw`UPDATE batches SET webhook_enqueued_at = NULL WHERE id = ${id}`;
    await stack.env.core.db.$executeRaw`DELETE FROM webhook_deliveries WHERE batch_id = ${id}`;
    await stack.reconciler.sweepOnce();
    await waitFor(() => r.got.length >= 3, { what: "the owed delivery" });
    expect(r.got[2]!.headers["webhook-id"]).toBe(`msg_${id}`);
  });

  it("logs an attempt before sending it: one a stopped deliverer left in flight stays in the log, and the next is numbered after it", async () => {
    // The first POST is held open until the test lets it answer 500; the rest answer 200.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let posts = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        posts++;
        if (posts === 1) void held.then(() => res.writeHead(500).end());
        else res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })], webhook_url: url });
    const id = res.body.batch_id;
    await waitFor(() => posts === 1, { what: "the first POST" });
    // Attempt 1 was logged before it was sent.
    expect((await deliveries(id)).map((d) => [d.attempt, d.status_code, d.error])).toEqual([[1, null, UNANSWERED_ATTEMPT]]);
    // What a deliverer killed mid-POST leaves (as for a stalled queue job run again): its row, no answer.
    expect(await beginDelivery(stack.env.core.db, { webhookId: `msg_${id}`, batchId: id, type: "batch.completed" })).toBe(2);
    release();
    await waitFor(async () => (await deliveries(id)).some((d) => d.delivered), { what: "the delivery", timeoutMs: 20_000 });
    const log = await deliveries(id);
    expect(log.map((d) => [d.attempt, d.status_code, d.error, d.delivered])).toEqual([
      [1, 500, "receiver answered 500", false],
      [2, null, UNANSWERED_ATTEMPT, false],
      [3, 200, null, true],
    ]);
    expect(posts).toBe(2);
  });

  it("opens no attempt once an event was delivered or eight attempts are logged, whatever the queue's own count", async () => {
    const db = stack.env.core.db;
    const batchId = (await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })] })).body.batch_id as string;
    const open = (webhookId: string) => beginDelivery(db, { webhookId, batchId, type: "batch.completed" });
    const attempts: (number | null)[] = [];
    for (let i = 0; i < 9; i++) attempts.push(await open("msg_capped"));
    expect(attempts).toEqual([1, 2, 3, 4, 5, 6, 7, 8, null]);
    expect(await open("msg_delivered")).toBe(1);
    await finishDelivery(db, { webhookId: "msg_delivered", attempt: 1, statusCode: 204, error: null, delivered: true });
    expect(await open("msg_delivered")).toBeNull();
  });

  it("refuses webhook_url values a deployment without private networks must not call", async () => {
    const strict = new Stack({ workers: [] });
    await strict.start();
    try {
      const s = await strict.env.user("strict", "pro");
      for (const [url, why] of [
        ["http://example.com/hook", "https"],
        ["https://127.0.0.1/hook", "private"],
        ["https://10.1.2.3/hook", "private"],
        ["https://169.254.169.254/latest", "private"],
        ["https://[::1]/hook", "private"],
        ["https://[fd00::1]/hook", "private"],
        ["https://localhost/hook", "private"],
        ["https://db.internal/hook", "private"],
        ["not a url", "absolute"],
        [`https://example.com/${"x".repeat(2000)}`, "2000"],
      ]) {
        const res = await strict.submitBatch(s.key, { simulations: [scripted({ steps: 1 })], webhook_url: url });
        expect(res.status).toBe(422);
        expect(res.body.detail[0].path).toBe("webhook_url");
        expect(res.body.detail[0].message).toContain(why);
      }
      const ok = await strict.submitBatch(s.key, { simulations: [scripted({ steps: 1 })], webhook_url: "https://hooks.example.com/simbatch" });
      expect(ok.status).toBe(202);
      expect(ok.body.webhook_url).toBe("https://hooks.example.com/simbatch");
    } finally {
      await strict.stop();
    }
  });
});
