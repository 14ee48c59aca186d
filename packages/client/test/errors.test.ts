import { ERROR_STATUS, type ErrorCode } from "@simbatch/errors";
import { ERROR_CLASSES, errorFromResponse, parseRetryAfter, SimbatchError, Simbatch, NotFound, BatchTooLarge, CostQuotaExceeded } from "../src/index.ts";
import { apiError, startServer } from "./server.ts";

const LIMITS: Partial<Record<ErrorCode, Record<string, unknown>>> = {
  BatchTooLarge: { tier: "free", max_batch_size: 5 },
  BudgetTooLow: { estimated_cost_usd: 0.05 },
  QuotaExceeded: { api_calls_used: 1000, api_calls_limit: 1000 },
  SimulationQuotaExceeded: { simulations_used: 10, simulations_limit: 10 },
  CostQuotaExceeded: { cost_used_usd: 1, cost_limit_usd: 1 },
  ConcurrencyLimitExceeded: { active_jobs: 1, concurrency_limit: 1 },
  RateLimitExceeded: { tier: "free", limit: 60 },
};

describe("typed errors", () => {
  it("maps every error code of packages/errors to its own class, with status, code, request id, detail and limit fields", () => {
    for (const [code, status] of Object.entries(ERROR_STATUS) as [ErrorCode, number][]) {
      const limits = LIMITS[code] ?? {};
      const body = { error: code, message: `m ${code}`, detail: { why: code }, request_id: `req_${code}`, ...limits };
      const err = errorFromResponse(status, JSON.stringify(body), new Headers({ "X-Request-Id": "req_header", "Retry-After": "7" }));
      expect(err).toBeInstanceOf(ERROR_CLASSES[code]);
      expect(err).toBeInstanceOf(SimbatchError);
      expect(err.name).toBe(code);
      expect({ status: err.status, code: err.code, message: err.message, requestId: err.requestId, detail: err.detail, retryAfter: err.retryAfter }).toEqual({
        status,
        code,
        message: `m ${code}`,
        requestId: `req_${code}`,
        detail: { why: code },
        retryAfter: 7,
      });
      for (const [field, value] of Object.entries(limits)) expect((err as unknown as Record<string, unknown>)[field]).toBe(value);
    }
  });

  it("gives each class only its own code: the classes are distinct", () => {
    const classes = new Set(Object.values(ERROR_CLASSES));
    expect(classes.size).toBe(Object.keys(ERROR_CLASSES).length);
    for (const code of Object.keys(ERROR_STATUS)) expect(Object.keys(ERROR_CLASSES)).toContain(code);
  });

  it("keeps an unknown code and a body that is not the API's as the base class", () => {
    const unknown = errorFromResponse(418, JSON.stringify({ error: "Teapot", message: "short and stout", detail: null, request_id: "r" }), new Headers());
    expect(unknown.constructor).toBe(SimbatchError);
    expect([unknown.code, unknown.status]).toEqual(["Teapot", 418]);
    const proxy = errorFromResponse(502, "<html>Bad Gateway</html>", new Headers({ "X-Request-Id": "req_p" }));
    expect(proxy.constructor).toBe(SimbatchError);
    expect([proxy.code, proxy.status, proxy.requestId]).toEqual(["UnexpectedResponse", 502, "req_p"]);
    expect(proxy.message).toContain("Bad Gateway");
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(parseRetryAfter("12")).toBe(12);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const now = Date.parse("2026-11-30T00:00:00Z");
    expect(parseRetryAfter("Mon, 30 Nov 2026 00:00:30 GMT", now)).toBe(30);
  });

  it("throws them from real responses, catchable by class", async () => {
    const server = await startServer((req, res) => {
      if (req.url!.startsWith("/simulations/batch/batch_")) return apiError(res, 404, "NotFound");
      if (req.url === "/simulations/batch") return apiError(res, 400, "BatchTooLarge", LIMITS.BatchTooLarge);
      apiError(res, 429, "CostQuotaExceeded", LIMITS.CostQuotaExceeded, { "Retry-After": "999999" });
    });
    try {
      const c = new Simbatch({ baseUrl: server.url, apiKey: "tp_0123456789abcdef0123456789abcdef" });
      await expect(c.batches.get("batch_000000000000")).rejects.toBeInstanceOf(NotFound);
      const big = (await c.batches.create({ simulations: [{ template_id: "a" }] }).catch((e: unknown) => e)) as BatchTooLarge;
      expect(big).toBeInstanceOf(BatchTooLarge);
      expect([big.tier, big.max_batch_size, big.requestId]).toEqual(["free", 5, "req_err"]);
      const cost = (await c.simulations.create({ template_id: "a" }).catch((e: unknown) => e)) as CostQuotaExceeded;
      expect(cost).toBeInstanceOf(CostQuotaExceeded);
      expect(cost.cost_limit_usd).toBe(1);
    } finally {
      await server.close();
    }
  });
});
