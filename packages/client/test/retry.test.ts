import {
  ConnectionError,
  QuotaExceeded,
  RateLimitExceeded,
  ServiceUnavailable,
  Simbatch,
  TimeoutError,
  ValidationError,
  type ClientOptions,
} from "../src/index.ts";
import { backoffMs, DEFAULT_RETRY, retryDelayMs } from "../src/retry.ts";
import { SimbatchError } from "../src/errors.ts";
import { apiError, batchBody, json, startServer } from "./server.ts";

/** Retries against a real local HTTP server: what is retried, how long the client waits, and what is not. */
describe("retries", () => {
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const client = (url: string, opts: ClientOptions = {}) =>
    new Simbatch({ baseUrl: url, apiKey: "tp_0123456789abcdef0123456789abcdef", retry: { initialDelayMs: 20, maxDelayMs: 100 }, ...opts });

  it("waits out Retry-After on a 429, then succeeds", async () => {
    server = await startServer((_req, res, n) =>
      n === 1 ? apiError(res, 429, "RateLimitExceeded", { tier: "free", limit: 60 }, { "Retry-After": "1" }) : json(res, 200, batchBody()),
    );
    const batch = await client(server.url).batches.get("batch_aaaaaaaaaaaa");
    expect(batch.batch_id).toBe("batch_aaaaaaaaaaaa");
    expect(server.seen).toHaveLength(2);
    // Honouring Retry-After: the second attempt came no sooner than one second after the first.
    expect(server.seen[1]!.at - server.seen[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(server.seen[0]!.headers["x-api-key"]).toBe("tp_0123456789abcdef0123456789abcdef");
  });

  it("retries a 503 with backoff, and gives up after maxRetries with the typed error", async () => {
    server = await startServer((_req, res) => apiError(res, 503, "ServiceUnavailable"));
    const err = await client(server.url, { maxRetries: 3 })
      .usage.get()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceUnavailable);
    expect(server.seen).toHaveLength(4);
  });

  it("does not retry a 422, and the error carries the field issues", async () => {
    server = await startServer((_req, res) =>
      apiError(res, 422, "ValidationError", { detail: [{ path: "simulations.0.entity_count", message: "must be at most 20" }] }),
    );
    const err = (await client(server.url)
      .batches.create({ simulations: [{ template_id: "board_meeting", entity_count: 99 }] })
      .catch((e: unknown) => e)) as ValidationError;
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.status).toBe(422);
    expect(err.detail).toEqual([{ path: "simulations.0.entity_count", message: "must be at most 20" }]);
    expect(server.seen).toHaveLength(1);
  });

  it("throws at once when Retry-After is longer than worth waiting (a monthly quota)", async () => {
    server = await startServer((_req, res) => apiError(res, 429, "QuotaExceeded", { api_calls_used: 1000, api_calls_limit: 1000 }, { "Retry-After": "86400" }));
    const err = (await client(server.url)
      .batches.stats()
      .catch((e: unknown) => e)) as QuotaExceeded;
    expect(err).toBeInstanceOf(QuotaExceeded);
    expect(err.retryAfter).toBe(86400);
    expect(err.api_calls_limit).toBe(1000);
    expect(server.seen).toHaveLength(1);
  });

  it("retries a GET after the connection drops, but not a cancel", async () => {
    server = await startServer((req, res, n) => {
      if (n === 1 || req.url!.endsWith("/cancel")) return void res.socket!.destroy();
      json(res, 200, batchBody());
    });
    const c = client(server.url);
    await expect(c.batches.get("batch_aaaaaaaaaaaa")).resolves.toMatchObject({ status: "RUNNING" });
    expect(server.seen).toHaveLength(2);
    const err = await c.batches.cancel("batch_aaaaaaaaaaaa").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(server.seen).toHaveLength(3);
  });

  it("retries a create after a lost connection with the same Idempotency-Key", async () => {
    server = await startServer((_req, res, n) => (n === 1 ? void res.socket!.destroy() : json(res, 202, batchBody({ done: 0 }))));
    await client(server.url).batches.create({ simulations: [{ template_id: "board_meeting" }] });
    expect(server.seen).toHaveLength(2);
    const [first, second] = server.seen.map((s) => s.headers["idempotency-key"]);
    expect(first).toMatch(/^[A-Za-z0-9._:-]{1,255}$/);
    expect(second).toBe(first);
    expect(JSON.parse(server.seen[1]!.body)).toEqual({ simulations: [{ template_id: "board_meeting" }] });
  });

  it("sends the caller's idempotency key, and a fresh one per call otherwise", async () => {
    server = await startServer((_req, res) => json(res, 202, batchBody({ done: 0 })));
    const c = client(server.url);
    await c.batches.create({ simulations: [{ template_id: "board_meeting" }] }, { idempotencyKey: "nightly-2026-11-30" });
    await c.simulations.create({ template_id: "board_meeting" });
    await c.simulations.create({ template_id: "board_meeting" });
    const keys = server.seen.map((s) => s.headers["idempotency-key"]);
    expect(keys[0]).toBe("nightly-2026-11-30");
    expect(keys[1]).not.toBe(keys[2]);
  });

  it("retries a 409 IdempotencyKeyInProgress after its Retry-After", async () => {
    server = await startServer((_req, res, n) =>
      n === 1 ? apiError(res, 409, "IdempotencyKeyInProgress", {}, { "Retry-After": "0" }) : json(res, 202, batchBody({ done: 0 })),
    );
    await expect(client(server.url).batches.create({ simulations: [{ template_id: "board_meeting" }] })).resolves.toMatchObject({ status: "RUNNING" });
    expect(server.seen).toHaveLength(2);
  });

  it("times out an attempt that gets no answer, retries it when idempotent, and not otherwise", async () => {
    server = await startServer((req, res, n) => {
      if (n === 1 || req.method === "POST") return; // never answered
      json(res, 200, batchBody());
    });
    const c = client(server.url, { timeoutMs: 200 });
    await expect(c.batches.get("batch_aaaaaaaaaaaa")).resolves.toMatchObject({ batch_id: "batch_aaaaaaaaaaaa" });
    expect(server.seen).toHaveLength(2);
    await expect(c.webhooks.rotateSecret()).rejects.toBeInstanceOf(TimeoutError);
    expect(server.seen).toHaveLength(3);
  });

  it("gives up on a 429 after maxRetries with the limit fields", async () => {
    server = await startServer((_req, res) => apiError(res, 429, "RateLimitExceeded", { tier: "free", limit: 60 }, { "Retry-After": "0" }));
    const err = (await client(server.url, { maxRetries: 2 })
      .templates.list()
      .catch((e: unknown) => e)) as RateLimitExceeded;
    expect(err).toBeInstanceOf(RateLimitExceeded);
    expect([err.tier, err.limit, err.retryAfter]).toEqual(["free", 60, 0]);
    expect(server.seen).toHaveLength(3);
  });

  it("raises TimeoutError when no attempt is answered", async () => {
    server = await startServer(() => undefined);
    const err = await client(server.url, { timeoutMs: 100, maxRetries: 1 })
      .usage.get()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(server.seen).toHaveLength(2);
  });

  it("stops waiting when the caller aborts", async () => {
    server = await startServer((_req, res) => apiError(res, 429, "RateLimitExceeded", { tier: "free", limit: 60 }, { "Retry-After": "30" }));
    const ac = new AbortController();
    const pending = client(server.url).batches.stats({ signal: ac.signal });
    setTimeout(() => ac.abort(new Error("stop")), 50);
    await expect(pending).rejects.toThrow("stop");
    expect(server.seen).toHaveLength(1);
  });
});

describe("backoff", () => {
  it("doubles up to the ceiling, with jitter in the upper half", () => {
    const p = { ...DEFAULT_RETRY, initialDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffMs(p, 0, () => 0)).toBe(50);
    expect(backoffMs(p, 0, () => 1)).toBe(100);
    expect(backoffMs(p, 2, () => 1)).toBe(400);
    expect(backoffMs(p, 10, () => 1)).toBe(1000);
  });

  it("retries 429 and 503 only, after Retry-After when given", () => {
    const p = DEFAULT_RETRY;
    const err = (status: number, code: string, retryAfter: number | null) => new SimbatchError({ status, code, message: "x", retryAfter });
    expect(retryDelayMs(p, err(429, "RateLimitExceeded", 2), 0, () => 0)).toBe(2000);
    expect(retryDelayMs(p, err(429, "RateLimitExceeded", 2), 0, () => 1)).toBe(2200);
    expect(retryDelayMs(p, err(503, "ServiceUnavailable", null), 1, () => 1)).toBe(1000);
    expect(retryDelayMs(p, err(400, "InvalidState", null), 0)).toBeNull();
    expect(retryDelayMs(p, err(500, "InternalError", null), 0)).toBeNull();
    expect(retryDelayMs(p, err(404, "NotFound", 1), 0)).toBeNull();
    expect(retryDelayMs(p, err(429, "QuotaExceeded", 3600), 0)).toBeNull();
  });
});
