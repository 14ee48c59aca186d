import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createEngine } from "@simbatch/engine";
import { Stack, FINAL_JOB } from "../support/stack.ts";

/**
 * The OpenAI-compatible engine through the whole service: a fake endpoint on
 * localhost answers per request; the job's charge is the usage it reported.
 */
/** What a provider's error text can hold: a masked key and billing details. */
const PROVIDER_SECRET = "model not allowed for key sk-proj-Ab12****************yz89; billing account acct_98765 is past due";

describe("LLM engine end to end", () => {
  let mode: "ok" | "reject" = "ok";
  let calls = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      calls++;
      if (mode === "reject") return res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: PROVIDER_SECRET } }));
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          choices: [{ message: { content: "The board hears the offer.\nDana Okafor: Not at this price." } }],
          usage: { prompt_tokens: 150, completion_tokens: 50, total_tokens: 200 },
        }),
      );
    });
  });
  let stack: Stack;
  let alice: { id: string; key: string };

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const engine = createEngine({
      kind: "openai",
      openai: { baseUrl, apiKey: "sk-test", model: "test-model", maxRetries: 1, retryBaseDelayMs: 1 },
      prices: { "test-model": 2 },
    });
    stack = await new Stack({ workers: [2], engine }).start();
    alice = await stack.env.user("alice", "pro");
  });
  afterAll(async () => {
    await stack.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("charges the tokens the model reported, at the configured price", async () => {
    calls = 0;
    const res = await stack.http().post("/simulations").set("X-API-Key", alice.key).send({ template_id: "board_meeting", timepoint_count: 2 });
    const job = await stack.waitJob(alice.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job.status).toBe("COMPLETED");
    expect(calls).toBe(2);
    expect(job.tokens_used).toBe(400);
    expect(job.cost_usd).toBeCloseTo((400 * 2) / 1e6, 10);
    const ledger = await stack.env.core.db.ledgerEntry.findMany({ where: { jobId: job.job_id } });
    expect(ledger.map((l) => [Number(l.tokens), Number(l.costMicros)])).toEqual([[400, 800]]);
  });

  it("fails the job on a permanent 4xx with a generic message naming the status, never the provider's text", async () => {
    mode = "reject";
    const res = await stack.http().post("/simulations").set("X-API-Key", alice.key).send({ template_id: "board_meeting" });
    const job = await stack.waitJob(alice.key, res.body.job_id, (j) => FINAL_JOB.has(j.status));
    expect(job.status).toBe("FAILED");
    expect(job.error_message).toBe("LLM provider error: HTTP 400 (request rejected)");
    for (const leak of ["model not allowed", "sk-proj", "acct_98765", "billing"]) expect(job.error_message).not.toContain(leak);
    expect(job.cost_usd).toBe(0);
    // Not in any view a client can read either.
    const list = await stack.http().get("/simulations?page_size=100").set("X-API-Key", alice.key);
    expect(JSON.stringify(list.body)).not.toContain("sk-proj");
  });
});
