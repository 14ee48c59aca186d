import http from "node:http";
import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BatchResultLineSchema, ErrorBodySchema } from "@simbatch/contracts";
import { scripted, Stack } from "../support/stack.ts";

const LINE_KEYS = ["cost_usd", "error", "index", "job_id", "result", "status", "template_id", "temporal_mode", "tokens_used"];

/** A forced full GC, as jest's --detectLeaks gets one (global.gc is not exposed under jest). */
function forcedGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/** Splits NDJSON text into parsed lines, checking that it ends with a newline. */
function ndjson(text: string): Record<string, any>[] {
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** GET /simulations/batch/{id}/results (contract: Batch results and the cross-run report). */
describe("batch results (NDJSON)", () => {
  const stack = new Stack({ workers: [4] });
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };
  let ent: { id: string; key: string };

  beforeAll(async () => {
    await stack.start();
    alice = await stack.env.user("alice", "pro");
    bob = await stack.env.user("bob", "pro");
    ent = await stack.env.user("erin", "enterprise");
  });
  afterAll(() => stack.stop());

  const get = (key: string, path: string) => stack.http().get(path).set("X-API-Key", key);
  const results = (key: string, batchId: string) =>
    get(key, `/simulations/batch/${batchId}/results`)
      .buffer(true)
      .parse((res, cb) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => cb(null, text));
      });

  it("answers one line per job in job_ids order, COMPLETED with the single-job result minus job, FAILED with its error", async () => {
    const sims = [
      { template_id: "board_meeting", config: { seed: 11 }, export_formats: ["json", "markdown", "pdf"] },
      scripted({ steps: 3, fail_at_step: 2 }),
      scripted({ steps: 2, cost_usd_per_step: 0.01, tokens_per_step: 7 }),
      { template_id: "crisis_response", config: { seed: 5 }, temporal_mode: "branching" },
      scripted({ steps: 1 }),
    ];
    const { body: batch } = await stack.submitBatch(alice.key, { simulations: sims, parallel_jobs: 5 });
    await stack.waitBatch(alice.key, batch.batch_id, (b) => b.completed_at !== null);
    const res = await results(alice.key, batch.batch_id);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/x-ndjson");
    expect(res.headers["x-request-id"]).toBeTruthy();
    const lines = ndjson(res.body as string);
    expect(lines.map((l) => l.job_id)).toEqual(batch.job_ids);
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4]);
    expect(lines.map((l) => l.status)).toEqual(["COMPLETED", "FAILED", "COMPLETED", "COMPLETED", "COMPLETED"]);

    const { body: withJobs } = await get(alice.key, `/simulations/batch/${batch.batch_id}/jobs`);
    for (const [i, line] of lines.entries()) {
      expect(Object.keys(line).sort()).toEqual(LINE_KEYS);
      BatchResultLineSchema.parse(line);
      const job = withJobs.jobs[i];
      expect(line).toMatchObject({
        job_id: job.job_id,
        status: job.status,
        template_id: job.template_id,
        temporal_mode: job.temporal_mode,
        cost_usd: job.cost_usd,
        tokens_used: job.tokens_used,
      });
      if (line.status === "COMPLETED") {
        const single = await get(alice.key, `/simulations/${line.job_id}/result`);
        expect(single.status).toBe(200);
        const { job: _job, ...rest } = single.body;
        expect(line.result).toEqual(rest);
        expect(Object.keys(line.result)).toEqual(Object.keys(rest));
        expect(line.error).toBeNull();
      }
    }
    expect(lines[0]!.result.narrative_exports).toEqual({
      json: `/simulations/${lines[0]!.job_id}/exports/json`,
      markdown: `/simulations/${lines[0]!.job_id}/exports/markdown`,
      pdf: `/simulations/${lines[0]!.job_id}/exports/pdf`,
    });
    expect(lines[0]!.result.entities.length).toBeGreaterThan(0);
    expect(lines[3]!.temporal_mode).toBe("BRANCHING");
    expect(lines[2]).toMatchObject({ cost_usd: 0.02, tokens_used: 14 });
    expect(lines[1]).toMatchObject({ result: null, error: { message: "scripted failure at step 2" } });
    expect(lines[1]!.error).toEqual({ message: withJobs.jobs[1].error_message });
  });

  it("answers at any time: unfinished jobs have their current status and a null result", async () => {
    const { body: batch } = await stack.submitBatch(alice.key, {
      simulations: [scripted({ steps: 400, step_ms: 50 }), scripted({ steps: 1 }), scripted({ steps: 1 })],
      parallel_jobs: 1,
    });
    const immediately = ndjson((await results(alice.key, batch.batch_id)).body as string);
    expect(immediately.map((l) => l.job_id)).toEqual(batch.job_ids);
    for (const l of immediately) {
      expect(["PENDING", "RUNNING"]).toContain(l.status);
      expect(l).toMatchObject({ result: null, error: null });
    }
    await stack.waitJob(alice.key, batch.job_ids[0], (j) => j.status === "RUNNING");
    const running = ndjson((await results(alice.key, batch.batch_id)).body as string);
    expect(running.map((l) => l.status)).toEqual(["RUNNING", "PENDING", "PENDING"]);
    expect(running.every((l) => l.result === null && l.error === null)).toBe(true);

    await stack.http().post(`/simulations/batch/${batch.batch_id}/cancel`).set("X-API-Key", alice.key).send({ reason: "done" });
    await stack.waitBatch(alice.key, batch.batch_id, (b) => b.completed_at !== null);
    const cancelled = ndjson((await results(alice.key, batch.batch_id)).body as string);
    expect(cancelled.map((l) => l.status)).toEqual(["CANCELLED", "CANCELLED", "CANCELLED"]);
    expect(cancelled.every((l) => l.result === null && l.error === null)).toBe(true);
  });

  it("is owner-scoped: 403 for another user's batch, 404 for an unknown id, 401 without a key", async () => {
    const { body: batch } = await stack.submitBatch(alice.key, { simulations: [scripted({ steps: 1 })] });
    for (const [key, id, status, code] of [
      [bob.key, batch.batch_id, 403, "Forbidden"],
      [alice.key, "batch_000000000000", 404, "NotFound"],
      [alice.key, "nope", 404, "NotFound"],
    ] as const) {
      const res = await get(key, `/simulations/batch/${id}/results`);
      expect({ status: res.status, error: res.body.error }).toEqual({ status, error: code });
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      expect(ErrorBodySchema.parse(res.body).request_id).toBe(res.headers["x-request-id"]);
    }
    expect((await stack.http().get(`/simulations/batch/${batch.batch_id}/results`)).status).toBe(401);
    expect((await stack.http().post(`/simulations/batch/${batch.batch_id}/results`).set("X-API-Key", alice.key)).status).toBe(405);
  });

  describe("a batch whose results total tens of megabytes", () => {
    const JOBS = 100;
    const PAD_CHUNKS = 15_000; // × 32 hex characters ≈ 480 KB per result, 48 MB in all
    let batchId: string;
    let jobIds: string[];

    beforeAll(async () => {
      const { body: batch } = await stack.submitBatch(ent.key, {
        simulations: Array.from({ length: JOBS }, () => scripted({ steps: 1 })),
        parallel_jobs: 20,
      });
      batchId = batch.batch_id;
      jobIds = batch.job_ids;
      await stack.waitBatch(ent.key, batchId, (b) => b.status === "COMPLETED", 60_000);
      // Grown in SQL, so the test process never holds the data it then measures.
      await stack.env.core.db.$executeRaw`
        UPDATE simulation_results r SET result = r.result || jsonb_build_object('padding',
          (SELECT string_agg(md5(r.job_id || ':' || i::text), '') FROM generate_series(1, ${PAD_CHUNKS}::int) i))
        FROM simulation_jobs j WHERE j.id = r.job_id AND j.batch_id = ${batchId}`;
    }, 90_000);

    const server = () =>
      new Promise<http.Server>((resolve) => {
        const s = http.createServer(stack.app);
        s.listen(0, "127.0.0.1", () => resolve(s));
      });
    const close = (s: http.Server) =>
      new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      });

    it("streams it with flat memory: the API's live heap grows far less than the results' total size", async () => {
      const [sized] = await stack.env.core.db.$queryRaw<{ total: bigint }[]>`
        SELECT sum(octet_length(r.result::text))::bigint AS total FROM simulation_results r JOIN simulation_jobs j ON j.id = r.job_id
        WHERE j.batch_id = ${batchId}`;
      const totalBytes = Number(sized!.total);
      expect(totalBytes).toBeGreaterThan(40 * 1024 * 1024);

      const gc = forcedGc();
      /** Live memory after a full GC: the JS heap (strings and rows a request holds, queued writes) and buffers. */
      const live = () => {
        gc();
        const m = process.memoryUsage();
        return { heap: m.heapUsed, buffers: m.arrayBuffers };
      };
      const s = await server();
      try {
        const baseline = live();
        const peak = { ...baseline };
        let received = 0;
        const seen: string[] = [];
        await new Promise<void>((resolve, reject) => {
          const port = (s.address() as AddressInfo).port;
          const req = http.get({ host: "127.0.0.1", port, path: `/simulations/batch/${batchId}/results`, headers: { "X-API-Key": ent.key } }, (res) => {
            expect(res.statusCode).toBe(200);
            expect(res.headers["content-type"]).toBe("application/x-ndjson");
            let partial = "";
            let chunks = 0;
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => {
              received += chunk.length;
              const parts = (partial + chunk).split("\n");
              partial = parts.pop()!;
              for (const p of parts) {
                // Check each line without keeping it (a slice would keep the whole chunk alive).
                const at = p.indexOf('"job_id":"');
                const expected = jobIds[seen.length] ?? "";
                expect(p.startsWith(`{"index":${seen.length},`) && p.startsWith(expected, at + 10)).toBe(true);
                seen.push(expected);
              }
              // A slow reader: the server has to wait for it (backpressure) rather than buffer the batch.
              res.pause();
              if (++chunks % 25 === 0) {
                const v = live();
                peak.heap = Math.max(peak.heap, v.heap);
                peak.buffers = Math.max(peak.buffers, v.buffers);
              }
              setTimeout(() => res.resume(), 1);
            });
            res.on("end", () => {
              expect(partial).toBe("");
              resolve();
            });
            res.on("error", reject);
          });
          req.on("error", reject);
        });
        expect(seen).toEqual(jobIds);
        expect(received).toBeGreaterThan(totalBytes);
        // Holding the batch's results, or queueing writes without waiting for the client, would
        // grow the heap by about the total. What a request may hold: one page of results (512 KiB
        // budget plus one result of up to 1 MiB) and the line being written. Buffers (the database
        // driver's receive buffer, sockets) move more, and are freed lazily, so they get more room.
        const heapGrowth = peak.heap - baseline.heap;
        const bufferGrowth = peak.buffers - baseline.buffers;
        expect({ heapGrowth, ok: heapGrowth < totalBytes / 4 }).toEqual({ heapGrowth, ok: true });
        expect({ heapGrowth, bufferGrowth, ok: heapGrowth + bufferGrowth < totalBytes / 2 }).toEqual({ heapGrowth, bufferGrowth, ok: true });
      } finally {
        await close(s);
      }
    }, 120_000);

    it("stops streaming when the client goes away, and the API carries on", async () => {
      const s = await server();
      // The server side of the stream: it must end because the client left, before writing it all.
      const served = new Promise<{ finished: boolean }>((resolve) =>
        s.once("request", (_req: http.IncomingMessage, res: http.ServerResponse) => res.once("close", () => resolve({ finished: res.writableFinished }))),
      );
      try {
        const port = (s.address() as AddressInfo).port;
        await new Promise<void>((resolve, reject) => {
          const req = http.get({ host: "127.0.0.1", port, path: `/simulations/batch/${batchId}/results`, headers: { "X-API-Key": ent.key } }, (res) => {
            let n = 0;
            res.on("data", () => {
              if (++n === 3) {
                req.destroy();
                resolve();
              }
            });
          });
          req.on("error", (e) => ((e as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(e)));
        });
        expect(await served).toEqual({ finished: false });
        const again = await results(ent.key, batchId);
        expect(again.status).toBe(200);
        expect(ndjson(again.body as string)).toHaveLength(JOBS);
      } finally {
        await close(s);
      }
    }, 60_000);
  });
});
