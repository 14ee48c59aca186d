import type { TierLimits } from "@simbatch/config";
import { AppError } from "@simbatch/errors";
import { batchRefusal, concurrencyRefusal, costQuotaRefusal, countsMatter, simulationQuotaRefusal, singleRefusal } from "../src/admission.ts";
import type { QuotaState } from "../src/usage-queries.ts";

const NOW = new Date("2026-03-31T23:59:00Z"); // 60 s before the period ends
const limits = (l: Partial<TierLimits> = {}): TierLimits => ({
  apiCalls: -1,
  simulations: -1,
  costMicros: -1,
  maxBatchSize: 100,
  concurrency: -1,
  ratePerMinute: 1000,
  ...l,
});
const quota = (q: Partial<QuotaState> = {}): QuotaState => ({ simulationsUsed: 0, costUsedMicros: 0n, reservedMicros: 0n, activeSingleJobs: 0, ...q });

function refused(e: AppError | null): AppError {
  expect(e).toBeInstanceOf(AppError);
  return e!;
}

describe("concurrencyRefusal", () => {
  it("admits below the limit and refuses at it, with the counts and a 5 s retry", () => {
    expect(concurrencyRefusal(quota({ activeSingleJobs: 2 }), limits({ concurrency: 3 }))).toBeNull();
    const e = refused(concurrencyRefusal(quota({ activeSingleJobs: 3 }), limits({ concurrency: 3 })));
    expect(e.code).toBe("ConcurrencyLimitExceeded");
    expect(e.status).toBe(429);
    expect(e.fields).toEqual({ active_jobs: 3, concurrency_limit: 3 });
    expect(e.retryAfter).toBe(5);
  });

  it("never refuses an unlimited tier; a limit of 0 refuses everything", () => {
    expect(concurrencyRefusal(quota({ activeSingleJobs: 10_000 }), limits({ concurrency: -1 }))).toBeNull();
    expect(refused(concurrencyRefusal(quota(), limits({ concurrency: 0 }))).code).toBe("ConcurrencyLimitExceeded");
  });
});

describe("simulationQuotaRefusal", () => {
  it("admits a request that fills the quota exactly, refuses one more", () => {
    expect(simulationQuotaRefusal(quota({ simulationsUsed: 7 }), limits({ simulations: 10 }), 3, NOW)).toBeNull();
    const e = refused(simulationQuotaRefusal(quota({ simulationsUsed: 7 }), limits({ simulations: 10 }), 4, NOW));
    expect(e.code).toBe("SimulationQuotaExceeded");
    expect(e.fields).toEqual({ simulations_used: 7, simulations_limit: 10 });
    expect(e.retryAfter).toBe(60); // until the next period
  });

  it("never refuses an unlimited tier", () => {
    expect(simulationQuotaRefusal(quota({ simulationsUsed: 1e9 }), limits({ simulations: -1 }), 100, NOW)).toBeNull();
  });
});

describe("costQuotaRefusal", () => {
  it("counts what was spent, what unfinished work reserved, and this request's estimate; exactly at the limit is admitted", () => {
    const q = quota({ costUsedMicros: 400_000n, reservedMicros: 350_000n });
    expect(costQuotaRefusal(q, limits({ costMicros: 1_000_000 }), 250_000, NOW)).toBeNull();
    const e = refused(costQuotaRefusal(q, limits({ costMicros: 1_000_000 }), 250_001, NOW));
    expect(e.code).toBe("CostQuotaExceeded");
    expect(e.fields).toEqual({ cost_used_usd: 0.4, cost_limit_usd: 1 });
    expect(e.retryAfter).toBe(60);
  });

  it("never refuses an unlimited tier", () => {
    expect(costQuotaRefusal(quota({ costUsedMicros: 10n ** 15n }), limits({ costMicros: -1 }), 1e9, NOW)).toBeNull();
  });
});

describe("singleRefusal", () => {
  it("checks concurrency, then the simulation quota, then the cost quota", () => {
    const l = limits({ concurrency: 1, simulations: 1, costMicros: 1 });
    const over = quota({ activeSingleJobs: 1, simulationsUsed: 1, costUsedMicros: 1n });
    expect(refused(singleRefusal(over, l, 10, NOW)).code).toBe("ConcurrencyLimitExceeded");
    expect(refused(singleRefusal({ ...over, activeSingleJobs: 0 }, l, 10, NOW)).code).toBe("SimulationQuotaExceeded");
    expect(refused(singleRefusal(quota({ costUsedMicros: 1n }), l, 10, NOW)).code).toBe("CostQuotaExceeded");
    expect(singleRefusal(quota(), l, 1, NOW)).toBeNull();
  });
});

describe("batchRefusal", () => {
  it("refuses a batch over the tier's maximum size, naming the tier; the maximum itself is admitted", () => {
    const l = limits({ maxBatchSize: 3 });
    expect(batchRefusal("free", quota(), l, [1, 1, 1], null, NOW)).toBeNull();
    const e = refused(batchRefusal("free", quota(), l, [1, 1, 1, 1], null, NOW));
    expect(e.code).toBe("BatchTooLarge");
    expect(e.status).toBe(400);
    expect(e.fields).toEqual({ tier: "free", max_batch_size: 3 });
  });

  it("refuses when the batch does not fit the simulation quota", () => {
    const l = limits({ simulations: 10 });
    expect(batchRefusal("basic", quota({ simulationsUsed: 8 }), l, [1, 1], null, NOW)).toBeNull();
    expect(refused(batchRefusal("basic", quota({ simulationsUsed: 8 }), l, [1, 1, 1], null, NOW)).code).toBe("SimulationQuotaExceeded");
  });

  it("refuses a cap below the first simulation's estimate (equal is enough), reporting the whole estimate", () => {
    expect(batchRefusal("pro", quota(), limits(), [500_000, 2_000_000], 500_000, NOW)).toBeNull();
    const e = refused(batchRefusal("pro", quota(), limits(), [500_000, 2_000_000], 499_999, NOW));
    expect(e.code).toBe("BudgetTooLow");
    expect(e.fields).toEqual({ estimated_cost_usd: 2.5 });
  });

  it("checks the cost quota against the batch's whole estimate, capped or not (contract: the new estimate)", () => {
    const l = limits({ costMicros: 1_000_000 });
    // Estimate 3 USD: refused whatever its 1 USD cap; 1 USD fits exactly.
    expect(refused(batchRefusal("pro", quota(), l, [1_000_000, 1_000_000, 1_000_000], 1_000_000, NOW)).code).toBe("CostQuotaExceeded");
    expect(refused(batchRefusal("pro", quota(), l, [1_000_000, 1_000_000, 1_000_000], null, NOW)).code).toBe("CostQuotaExceeded");
    expect(batchRefusal("pro", quota(), l, [1_000_000], 1_000_000, NOW)).toBeNull();
    expect(refused(batchRefusal("pro", quota({ reservedMicros: 1n }), l, [1_000_000], 1_000_000, NOW)).code).toBe("CostQuotaExceeded");
  });

  it("checks size, then simulation quota, then budget, then cost quota", () => {
    const l = limits({ maxBatchSize: 2, simulations: 2, costMicros: 0 });
    expect(refused(batchRefusal("free", quota({ simulationsUsed: 2 }), l, [5, 5, 5], 1, NOW)).code).toBe("BatchTooLarge");
    expect(refused(batchRefusal("free", quota({ simulationsUsed: 2 }), l, [5, 5], 1, NOW)).code).toBe("SimulationQuotaExceeded");
    expect(refused(batchRefusal("free", quota(), l, [5, 5], 1, NOW)).code).toBe("BudgetTooLow");
    expect(refused(batchRefusal("free", quota(), l, [5, 5], 5, NOW)).code).toBe("CostQuotaExceeded");
  });
});

describe("countsMatter", () => {
  it("is false only for a tier with nothing counted for that kind of request", () => {
    expect(countsMatter(limits(), "batch")).toBe(false);
    expect(countsMatter(limits({ concurrency: 3 }), "batch")).toBe(false); // batches are not bound by the single-job concurrency
    expect(countsMatter(limits({ concurrency: 3 }), "single")).toBe(true);
    expect(countsMatter(limits({ simulations: 10 }), "batch")).toBe(true);
    expect(countsMatter(limits({ costMicros: 0 }), "batch")).toBe(true);
  });
});
