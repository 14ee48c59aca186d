import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createEngine } from "../src/index.ts";
import type { ProviderErrorEvent } from "../src/openai-client.ts";
import { recordingCtx, specFor } from "./helpers.ts";

type Reply = { status: number; body: unknown };
/** A fake OpenAI-compatible server answering from a script; the last reply repeats. */
function fakeServer(replies: Reply[]) {
  const seen: { auth: string | undefined; body: { model: string; messages: unknown[] } }[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      seen.push({ auth: req.headers.authorization, body: JSON.parse(raw) as { model: string; messages: unknown[] } });
      const reply = replies[Math.min(seen.length - 1, replies.length - 1)]!;
      res.writeHead(reply.status, { "content-type": "application/json" }).end(JSON.stringify(reply.body));
    });
  });
  return {
    seen,
    start: () =>
      new Promise<string>((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`))),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const ok = (tokens: number): Reply => ({
  status: 200,
  body: {
    choices: [{ message: { content: "The room goes quiet.\nDana Okafor: We are not selling.\nMiles Brenner: Then show me the runway." } }],
    usage: { total_tokens: tokens },
  },
});

async function runAgainst(replies: Reply[], over: Parameters<typeof specFor>[1] = {}) {
  const fake = fakeServer(replies);
  const baseUrl = await fake.start();
  const logged: ProviderErrorEvent[] = [];
  try {
    const engine = createEngine({
      kind: "openai",
      openai: { baseUrl, apiKey: "sk-test", model: "gpt-4o-mini", maxRetries: 2, retryBaseDelayMs: 1, onProviderError: (e) => logged.push(e) },
      prices: { "gpt-4o-mini": 0.6 },
    });
    const out = await engine.run(specFor("showcase/board_meeting", over), recordingCtx().ctx);
    return { out, seen: fake.seen, logged };
  } finally {
    await fake.stop();
  }
}

describe("OpenAI engine against a fake server", () => {
  it("completes with the model's text and charges its usage exactly", async () => {
    const { out, seen } = await runAgainst([ok(123)]);
    expect(out.kind).toBe("completed");
    expect(seen).toHaveLength(3);
    expect(seen[0]!.auth).toBe("Bearer sk-test");
    expect(seen[0]!.body.model).toBe("gpt-4o-mini");
    expect(out).toMatchObject({ steps: 3, tokens: 369, costMicros: Math.round(369 * 0.6) });
    if (out.kind !== "completed") return;
    const tp = (out.result.timepoints as { narrative: string; dialog: { speaker: string; line: string }[] }[])[0]!;
    expect(tp.narrative).toContain("We are not selling.");
    expect(tp.dialog).toContainEqual(expect.objectContaining({ speaker: "e1", line: "We are not selling." }));
  });

  it("retries a 429 and then succeeds, charging only the successful calls", async () => {
    const { out, seen } = await runAgainst([{ status: 429, body: { error: { message: "slow down" } } }, ok(50)], { timepointCount: 1 });
    expect(seen).toHaveLength(2);
    expect(out).toMatchObject({ kind: "completed", tokens: 50, costMicros: 30 });
  });

  it("fails permanently on a 400 with a generic message naming the status; the provider's text goes to the log only", async () => {
    const { out, seen, logged } = await runAgainst([{ status: 400, body: { error: { message: "model not supported" } } }]);
    expect(seen).toHaveLength(1);
    expect(out).toMatchObject({ kind: "failed", steps: 0, tokens: 0, costMicros: 0 });
    if (out.kind === "failed") expect(out.errorMessage).toBe("LLM provider error: HTTP 400 (request rejected)");
    expect(logged).toEqual([{ status: 400, detail: "HTTP 400: model not supported", retryable: false, attempt: 1 }]);
  });

  it("never puts the provider's error text (masked keys, billing details) in the job's error message", async () => {
    const secret = "Incorrect API key provided: sk-proj-AbCd************************wxYZ. Billing: card ending 4242 declined";
    for (const status of [401, 402, 403, 404, 429, 500, 503]) {
      const { out, logged } = await runAgainst([{ status, body: { error: { message: secret } } }]);
      expect(out.kind).toBe("failed");
      if (out.kind !== "failed") continue;
      expect(out.errorMessage).toContain(`HTTP ${status}`);
      expect(out.errorMessage).toMatch(/^LLM provider error: HTTP \d{3} \([a-z ]+\)/);
      for (const leak of ["sk-proj", "4242", "Billing", "Incorrect"]) expect(out.errorMessage).not.toContain(leak);
      expect(logged.length).toBeGreaterThan(0);
      expect(logged[0]!.detail).toContain(secret);
    }
    // Plain-text bodies too.
    const { out } = await runAgainst([{ status: 401, body: "sk-live-abcdef is invalid" }]);
    if (out.kind === "failed") expect(out.errorMessage).toBe("LLM provider error: HTTP 401 (authentication failed)");
  });

  it("says 'rate limited' with the status when 429s outlast the retries", async () => {
    const { out, seen } = await runAgainst(
      [{ status: 429, body: { error: { message: "You exceeded your current quota, please check your plan and billing details" } } }],
      { timepointCount: 1 },
    );
    expect(seen).toHaveLength(3);
    expect(out).toMatchObject({ kind: "failed", errorMessage: "LLM provider error: HTTP 429 (rate limited) (gave up after 3 attempts)" });
  });

  it("gives up after its retries on repeated 5xx, keeping what earlier steps spent", async () => {
    const { out, seen, logged } = await runAgainst([ok(40), { status: 503, body: { error: { message: "overloaded" } } }]);
    expect(seen).toHaveLength(4);
    expect(out).toMatchObject({ kind: "failed", steps: 1, tokens: 40 });
    if (out.kind === "failed") expect(out.errorMessage).toContain("HTTP 503");
    if (out.kind === "failed") expect(out.errorMessage).not.toContain("overloaded");
    expect(logged.map((e) => e.attempt)).toEqual([1, 2, 3]);
  });

  it("needs a price for its model", () => {
    expect(() => createEngine({ kind: "openai", openai: { baseUrl: "http://127.0.0.1:1", apiKey: "k", model: "unpriced" } })).toThrow(/no price/);
  });

  it("times out a request that never answers, retries it, then fails naming the timeout", async () => {
    let requests = 0;
    // Accepts the request and never answers: only the client's timeout ends it.
    const server = createServer((req) => {
      requests++;
      req.resume();
    });
    const baseUrl = await new Promise<string>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`)),
    );
    try {
      const engine = createEngine({
        kind: "openai",
        openai: { baseUrl, apiKey: "k", model: "gpt-4o-mini", timeoutMs: 100, maxRetries: 1, retryBaseDelayMs: 1 },
        prices: { "gpt-4o-mini": 0.6 },
      });
      const out = await engine.run(specFor("showcase/board_meeting", { timepointCount: 1 }), recordingCtx().ctx);
      expect(requests).toBe(2);
      expect(out).toMatchObject({ kind: "failed", steps: 0, tokens: 0 });
      if (out.kind === "failed") expect(out.errorMessage.toLowerCase()).toMatch(/time/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
