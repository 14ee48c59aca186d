import { InvalidState, Simbatch, SimbatchError } from "../src/index.ts";
import { apiError, batchBody, json, startServer } from "./server.ts";

const B = "batch_aaaaaaaaaaaa";
const client = (url: string) => new Simbatch({ baseUrl: url, apiKey: "k" });

/** The batch-control routes' requests as the contract has them, against a local server that answers like the API. */
describe("batch control requests", () => {
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("dry run: POST ?dry_run=true with the body, returning the estimate", async () => {
    const estimate = {
      dry_run: true,
      total_jobs: 2,
      estimated_cost_usd: 0.1,
      job_estimates_usd: [0.05, 0.05],
      simulations_remaining: 998,
      cost_remaining_usd: 99.9,
    };
    server = await startServer((_req, res) => json(res, 200, estimate));
    const body = { simulations: [{ template_id: "board_meeting" }, { template_id: "board_meeting" }], parallel_jobs: 2 };
    await expect(client(server.url).batches.dryRun(body)).resolves.toEqual(estimate);
    const [req] = server.seen;
    expect([req!.method, req!.url, JSON.parse(req!.body)]).toEqual(["POST", "/simulations/batch?dry_run=true", body]);
  });

  it("dry run against an API that does not know it: says a batch was created instead of passing it off as an estimate", async () => {
    server = await startServer((_req, res) => json(res, 202, batchBody({ done: 0 })));
    const err = (await client(server.url)
      .batches.dryRun({ simulations: [{ template_id: "board_meeting" }] })
      .catch((e: unknown) => e)) as SimbatchError;
    expect(err).toBeInstanceOf(SimbatchError);
    expect(err.code).toBe("UnexpectedResponse");
    expect(err.message).toContain(B);
  });

  it("pause and resume POST to their routes and return the batch", async () => {
    server = await startServer((req, res) => {
      if (req.url!.includes("batch_000000000000")) return apiError(res, 400, "InvalidState");
      json(res, 200, { ...batchBody(), paused: req.url!.endsWith("/pause") });
    });
    const c = client(server.url);
    expect((await c.batches.pause(B)).paused).toBe(true);
    expect((await c.batches.resume(B)).paused).toBe(false);
    await expect(c.batches.pause("batch_000000000000")).rejects.toBeInstanceOf(InvalidState);
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      `POST /simulations/batch/${B}/pause`,
      `POST /simulations/batch/${B}/resume`,
      "POST /simulations/batch/batch_000000000000/pause",
    ]);
  });

  it("webhook secret, rotation and deliveries", async () => {
    const delivery = {
      webhook_id: "msg_1",
      type: "batch.completed",
      attempt: 1,
      status_code: 200,
      error: null,
      delivered: true,
      created_at: "2026-11-30T00:00:00.000Z",
    };
    server = await startServer((req, res) => {
      if (req.url === "/webhooks/secret") return json(res, 200, { secret: "whsec_AAAA" });
      if (req.url === "/webhooks/secret/rotate") return json(res, 200, { secret: "whsec_BBBB" });
      json(res, 200, { deliveries: [delivery] });
    });
    const c = client(server.url);
    expect(await c.webhooks.secret()).toEqual({ secret: "whsec_AAAA" });
    expect(await c.webhooks.rotateSecret()).toEqual({ secret: "whsec_BBBB" });
    expect(await c.batches.webhookDeliveries(B)).toEqual({ deliveries: [delivery] });
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      "GET /webhooks/secret",
      "POST /webhooks/secret/rotate",
      `GET /simulations/batch/${B}/webhook-deliveries`,
    ]);
  });

  it("report: an object for json, the document's text for markdown and csv", async () => {
    server = await startServer((req, res) => {
      const format = new URL(req.url!, "http://x").searchParams.get("format");
      if (format === "json") return json(res, 200, { batch_id: B, status: "COMPLETED" });
      res.writeHead(200, { "Content-Type": format === "csv" ? "text/csv" : "text/markdown" });
      res.end(format === "csv" ? "index,job_id\r\n0,sim_aaaaaaaaaaaa\r\n" : "# Batch report\n");
    });
    const c = client(server.url);
    expect(await c.batches.report(B)).toEqual({ batch_id: B, status: "COMPLETED" });
    expect(await c.batches.report(B, { format: "csv" })).toBe("index,job_id\r\n0,sim_aaaaaaaaaaaa\r\n");
    expect(await c.batches.report(B, { format: "markdown" })).toBe("# Batch report\n");
  });

  it("template ids keep their slash; other path parts are encoded", async () => {
    server = await startServer((_req, res) => json(res, 200, {}));
    const c = client(server.url);
    await c.templates.get("showcase/board_meeting");
    await c.batches.get("a/b?c");
    expect(server.seen.map((s) => s.url)).toEqual(["/simulations/templates/showcase/board_meeting", "/simulations/batch/a%2Fb%3Fc"]);
  });
});
