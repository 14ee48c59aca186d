import { SseClient } from "../support/sse.ts";
import { Stack, scripted } from "../support/stack.ts";

/** Contract: Batch control → Live progress (Server-Sent Events). */
describe("live progress streams", () => {
  const stack = new Stack({ workers: [4], sseKeepAliveMs: 300, sseMaxStreams: 3 });
  let base: string;
  let u: { id: string; key: string };
  const open: SseClient[] = [];
  const sse = async (path: string, headers: Record<string, string> = {}, url = base) => {
    const c = await SseClient.open(`${url}${path}`, { "X-API-Key": u.key, ...headers });
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    await stack.start();
    base = await stack.serve();
    u = await stack.env.user("watcher", "pro");
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(() => stack.stop());

  it("sends a snapshot, then changes at most every 250 ms, then the terminal batch, then closes", async () => {
    const res = await stack.submitBatch(u.key, { simulations: Array.from({ length: 4 }, () => scripted({ steps: 15, step_ms: 20 })), parallel_jobs: 2 });
    const c = await sse(`/simulations/batch/${res.body.batch_id}/events`);
    expect(c.status).toBe(200);
    expect(c.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await c.untilEnded();
    const [first, ...rest] = c.events;
    expect(first!.event).toBe("batch");
    expect(first!.data.batch_id).toBe(res.body.batch_id);
    const last = c.events[c.events.length - 1]!;
    expect(last.event).toBe("batch");
    expect(last.data.status).toBe("COMPLETED");
    expect(last.data.completed_at).not.toBeNull();
    // Ids increase by one; job events carry the contract's fields.
    expect(c.events.map((e) => Number(e.id))).toEqual(c.events.map((_, i) => i + 1));
    const jobs = rest.filter((e) => e.event === "job");
    expect(jobs.length).toBeGreaterThan(0);
    for (const j of jobs) expect(Object.keys(j.data).sort()).toEqual(["cost_usd", "error_message", "job_id", "progress_percent", "status"]);
    expect(new Set(jobs.filter((j) => j.data.status === "COMPLETED").map((j) => j.data.job_id)).size).toBe(4);
    // At most one event per 250 ms, every event, the snapshot's included (the margin is for delivery: a
    // clean-clone CI run under load saw 183 ms between two events sent 250 ms apart).
    for (let i = 1; i < c.events.length; i++) expect(c.events[i]!.at - c.events[i - 1]!.at).toBeGreaterThanOrEqual(150);

    // Progress moved between snapshot and end.
    expect(c.events.filter((e) => e.event === "batch").length).toBeGreaterThan(2);
  });

  it("reads a batch's state once per change window for all of its streams, and counts a stream as one API call", async () => {
    const used = async () => (await stack.http().get("/simulations/batch/usage").set("X-API-Key", u.key)).body.api_calls_used as number;
    const before = await used();
    const res = await stack.submitBatch(u.key, { simulations: Array.from({ length: 3 }, () => scripted({ steps: 160, step_ms: 25 })), parallel_jobs: 3 });
    const reads = stack.live!.stats.refreshReads;
    const t0 = Date.now();
    const streams = [await sse(`/simulations/batch/${res.body.batch_id}/events`)];
    streams.push(await sse(`/simulations/batch/${res.body.batch_id}/events`));
    streams.push(await sse(`/simulations/batch/${res.body.batch_id}/events`));
    await Promise.all(streams.map((c) => c.untilEnded()));
    const refreshes = stack.live!.stats.refreshReads - reads;
    // Every stream saw the changes (after its snapshot), from shared reads: at most one read per
    // 250 ms change window while the batch ran, where a read per stream would make three.
    const updates = Math.min(...streams.map((c) => c.events.filter((e) => e.event === "batch").length - 1));
    expect(updates).toBeGreaterThan(4);
    expect(refreshes).toBeLessThanOrEqual((Date.now() - t0) / 250 + 2);
    // The submit, the three streams (however many events they carried) and this usage call.
    expect((await used()) - before).toBe(1 + 3 + 1);
  });

  it("answers a finished batch with its snapshot and closes; a fresh snapshot on reconnect with Last-Event-ID", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })] });
    await stack.waitBatch(u.key, res.body.batch_id, (b) => b.completed_at !== null);
    const c = await sse(`/simulations/batch/${res.body.batch_id}/events`, { "Last-Event-ID": "41" });
    await c.untilEnded();
    expect(c.events).toHaveLength(1);
    expect(c.events[0]).toMatchObject({ id: "42", event: "batch" });
    expect(c.events[0]!.data.status).toBe("COMPLETED");
  });

  it("streams one job: snapshot, changes, terminal job object", async () => {
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", u.key)
      .send(scripted({ steps: 20, step_ms: 30 }));
    const c = await sse(`/simulations/${res.body.job_id}/events`);
    await c.untilEnded();
    expect(c.events[0]!.event).toBe("job");
    // At most one event per 250 ms, counted from the snapshot (the margin is for delivery, as above).
    expect(c.events.length).toBeGreaterThan(2);
    for (let i = 1; i < c.events.length; i++) expect(c.events[i]!.at - c.events[i - 1]!.at).toBeGreaterThanOrEqual(150);
    expect(c.events.every((e) => e.event === "job")).toBe(true);
    const last = c.events[c.events.length - 1]!.data;
    expect(last).toMatchObject({ job_id: res.body.job_id, status: "COMPLETED", progress_percent: 100 });
    expect(c.events.some((e) => e.data.status === "RUNNING")).toBe(true);
  });

  it("sends keep-alive comments on open streams", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 400, step_ms: 20 })] });
    const c = await sse(`/simulations/batch/${res.body.batch_id}/events`);
    await c.until(() => c.comments.filter((x) => x === "keep-alive").length >= 2, "two keep-alives");
    await stack.http().post(`/simulations/batch/${res.body.batch_id}/cancel`).set("X-API-Key", u.key).send({});
    await c.untilEnded();
    expect(c.events[c.events.length - 1]!.data.status).toBe("CANCELLED");
  });

  it("caps open streams per user (429 RateLimitExceeded) and frees a slot when a stream closes", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 400, step_ms: 20 })] });
    const id = res.body.batch_id;
    const streams = [await sse(`/simulations/batch/${id}/events`), await sse(`/simulations/batch/${id}/events`), await sse(`/simulations/batch/${id}/events`)];
    for (const s of streams) await s.until(() => s.events.length >= 1, "a snapshot");
    const refused = await sse(`/simulations/batch/${id}/events`);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body!)).toMatchObject({ error: "RateLimitExceeded", limit: 3, tier: "pro" });
    streams[0]!.close();
    const deadline = Date.now() + 10_000;
    let again = await sse(`/simulations/batch/${id}/events`);
    while (again.status === 429 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      again = await sse(`/simulations/batch/${id}/events`);
    }
    expect(again.status).toBe(200);
    await stack.http().post(`/simulations/batch/${id}/cancel`).set("X-API-Key", u.key).send({});
  });

  it("is owner-scoped: 403 for another user's batch, 404 for an unknown one", async () => {
    const res = await stack.submitBatch(u.key, { simulations: [scripted({ steps: 1 })] });
    const other = await stack.env.user("peeker", "pro");
    const c = await SseClient.open(`${base}/simulations/batch/${res.body.batch_id}/events`, { "X-API-Key": other.key });
    expect(c.status).toBe(403);
    const missing = await sse(`/simulations/batch/batch_000000000000/events`);
    expect(missing.status).toBe(404);
  });

  describe("behind two API replicas", () => {
    let baseB: string;
    beforeAll(async () => {
      baseB = await stack.serve(stack.replica());
    });

    it("serves streams on either replica for work submitted and paused through the other", async () => {
      // Long enough (3 x 1 s, one at a time) that the pause lands while jobs still wait, though a stream shows a change
      // up to a few events (250 ms each) after it happened.
      const res = await stack.submitBatch(u.key, { simulations: Array.from({ length: 3 }, () => scripted({ steps: 40, step_ms: 25 })), parallel_jobs: 1 });
      const id = res.body.batch_id;
      const onB = await sse(`/simulations/batch/${id}/events`, {}, baseB);
      const onA = await sse(`/simulations/batch/${id}/events`);
      await onB.until(() => onB.events.some((e) => e.event === "job" && e.data.status === "COMPLETED"), "a job's end on replica B");
      // A pause through replica A reaches B's stream.
      await stack.http().post(`/simulations/batch/${id}/pause`).set("X-API-Key", u.key);
      await onB.until(() => onB.events.some((e) => e.event === "batch" && e.data.paused === true), "the pause on replica B");
      await stack.http().post(`/simulations/batch/${id}/resume`).set("X-API-Key", u.key);
      await Promise.all([onA.untilEnded(30_000), onB.untilEnded(30_000)]);
      for (const c of [onA, onB]) expect(c.events[c.events.length - 1]!.data).toMatchObject({ batch_id: id, status: "COMPLETED" });
    });
  });
});
