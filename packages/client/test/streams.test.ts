import type http from "node:http";
import { NotFound, Simbatch, type Batch } from "../src/index.ts";
import { apiError, batchBody, json, startServer } from "./server.ts";

const B = "batch_aaaaaaaaaaaa";

function sse(res: http.ServerResponse): (chunk: string) => void {
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  res.flushHeaders();
  return (chunk) => res.write(chunk);
}

const event = (id: number, type: string, data: unknown) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
const client = (url: string) => new Simbatch({ baseUrl: url, apiKey: "k", retry: { initialDelayMs: 10, maxDelayMs: 50 } });

describe("batch event streams", () => {
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("streamBatch yields batch and job events to the terminal one, skipping keep-alives, across split chunks", async () => {
    server = await startServer((req, res) => {
      expect(req.headers.accept).toBe("text/event-stream");
      const write = sse(res);
      const all =
        event(1, "batch", batchBody({ done: 0 })) +
        ": keep-alive\n\n" +
        event(2, "job", { job_id: "sim_aaaaaaaaaaaa", status: "COMPLETED", progress_percent: 100, cost_usd: 0.05, error_message: null }) +
        event(3, "batch", batchBody({ done: 1 })) +
        event(4, "batch", batchBody({ done: 2 }));
      // Cut the stream at awkward places: inside a field name, a JSON value, a blank line.
      const cuts = [7, 40, 300, all.length - 1];
      let from = 0;
      for (const at of cuts) {
        write(all.slice(from, at));
        from = at;
      }
      write(all.slice(from));
      res.end();
    });
    const got: string[] = [];
    for await (const e of client(server.url).streamBatch(B))
      got.push(`${e.id}:${e.type}:${e.type === "batch" ? e.data.progress.completed_jobs : e.data.status}`);
    expect(got).toEqual(["1:batch:0", "2:job:COMPLETED", "3:batch:1", "4:batch:2"]);
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]!.url).toBe(`/simulations/batch/${B}/events`);
  });

  it("reopens a stream that broke before the end with Last-Event-ID", async () => {
    server = await startServer((_req, res, n) => {
      const write = sse(res);
      if (n === 1) {
        write(event(7, "batch", batchBody({ done: 0 })));
        setTimeout(() => res.socket!.destroy(), 20);
        return;
      }
      write(event(9, "batch", batchBody({ done: 2 })));
      res.end();
    });
    const ids: (string | undefined)[] = [];
    for await (const e of client(server.url).streamBatch(B)) ids.push(e.id);
    expect(ids).toEqual(["7", "9"]);
    expect(server.seen).toHaveLength(2);
    expect(server.seen[0]!.headers["last-event-id"]).toBeUndefined();
    expect(server.seen[1]!.headers["last-event-id"]).toBe("7");
  });

  it("waitForBatch follows the stream and reports each state, without polling", async () => {
    server = await startServer((req, res) => {
      if (!req.url!.endsWith("/events")) return json(res, 500, {});
      const write = sse(res);
      for (let done = 0; done <= 2; done++) write(event(done + 1, "batch", batchBody({ done })));
      res.end();
    });
    const seen: number[] = [];
    const final = await client(server.url).waitForBatch(B, { onProgress: (b) => seen.push(b.progress.completed_jobs) });
    expect(final.status).toBe("COMPLETED");
    expect(seen).toEqual([0, 1, 2]);
    expect(server.seen.map((s) => s.url)).toEqual([`/simulations/batch/${B}/events`]);
  });

  it.each([
    [404, "NotFound"],
    [405, "MethodNotAllowed"],
  ])("waitForBatch polls when the events route answers %i", async (status, code) => {
    let polls = 0;
    server = await startServer((req, res) => {
      if (req.url!.endsWith("/events")) return apiError(res, status, code);
      polls++;
      json(res, 200, batchBody({ done: Math.min(polls - 1, 2) }));
    });
    const seen: number[] = [];
    const final = await client(server.url).waitForBatch(B, { pollIntervalMs: 10, onProgress: (b) => seen.push(b.progress.completed_jobs) });
    expect(final.progress.completed_jobs).toBe(2);
    expect(final.completed_at).not.toBeNull();
    expect(seen).toEqual([0, 1, 2]);
    expect(polls).toBe(3);
  });

  it("waitForBatch polls when the stream cannot be kept open", async () => {
    let polls = 0;
    server = await startServer((req, res) => {
      if (req.url!.endsWith("/events")) return void res.socket!.destroy();
      polls++;
      json(res, 200, batchBody({ done: polls >= 2 ? 2 : 1 }));
    });
    const final: Batch = await client(server.url).waitForBatch(B, { pollIntervalMs: 10 });
    expect(final.status).toBe("COMPLETED");
    expect(polls).toBe(2);
  });

  it("waitForBatch throws NotFound for a batch that does not exist", async () => {
    server = await startServer((_req, res) => apiError(res, 404, "NotFound"));
    await expect(client(server.url).waitForBatch("batch_000000000000", { pollIntervalMs: 10 })).rejects.toBeInstanceOf(NotFound);
  });

  it("follows a job's stream to its end", async () => {
    server = await startServer((_req, res) => {
      const write = sse(res);
      write(event(1, "job", { job_id: "sim_aaaaaaaaaaaa", status: "RUNNING", progress_percent: 40 }));
      write(event(2, "job", { job_id: "sim_aaaaaaaaaaaa", status: "COMPLETED", progress_percent: 100 }));
      res.end();
    });
    const got: string[] = [];
    for await (const e of client(server.url).simulations.events("sim_aaaaaaaaaaaa")) got.push(`${e.data.status}:${e.data.progress_percent}`);
    expect(got).toEqual(["RUNNING:40", "COMPLETED:100"]);
    expect(server.seen[0]!.url).toBe("/simulations/sim_aaaaaaaaaaaa/events");
  });
});

describe("batch results (NDJSON)", () => {
  it("parses each line as it arrives, however the bytes are cut", async () => {
    const lines = [0, 1, 2].map((index) => ({
      index,
      job_id: `sim_00000000000${index}`,
      status: "COMPLETED",
      result: { summary: "é…".repeat(5000 * (index + 1)) },
      error: null,
    }));
    const body = lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
    const server = await startServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/x-ndjson" });
      const bytes = Buffer.from(body);
      // 1000-byte pieces split lines and the two-byte and three-byte characters in them.
      for (let i = 0; i < bytes.length; i += 1000) res.write(bytes.subarray(i, i + 1000));
      res.end();
    });
    try {
      const got = [];
      for await (const line of client(server.url).batches.results(B)) got.push(line);
      expect(got).toEqual(lines);
      expect(server.seen[0]!.url).toBe(`/simulations/batch/${B}/results`);
    } finally {
      await server.close();
    }
  });
});
