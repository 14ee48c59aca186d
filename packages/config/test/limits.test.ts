import { ConfigError, DEFAULT_TIER_LIMITS, parseTierLimits } from "../src/index.ts";

describe("parseTierLimits", () => {
  it("returns the contract's table without overrides", () => {
    const l = parseTierLimits({});
    expect(l).toEqual(DEFAULT_TIER_LIMITS);
    expect(l.free).toEqual({ apiCalls: 1_000, simulations: 10, costMicros: 1_000_000, maxBatchSize: 5, concurrency: 1, ratePerMinute: 60 });
    expect(l.enterprise).toMatchObject({ apiCalls: -1, simulations: -1, costMicros: -1, maxBatchSize: 100, concurrency: -1, ratePerMinute: 5_000 });
  });

  it("applies per-deployment overrides, costs in USD to micro-dollars, -1 for unlimited", () => {
    const l = parseTierLimits({
      QUOTA_FREE_SIMULATIONS: "20",
      QUOTA_BASIC_COST_USD: "12.5",
      QUOTA_PRO_API_CALLS: "-1",
      RATE_LIMIT_PRO_PER_MINUTE: "2000",
      QUOTA_FREE_API_CALLS: "",
    });
    expect(l.free.simulations).toBe(20);
    expect(l.free.apiCalls).toBe(1_000);
    expect(l.basic.costMicros).toBe(12_500_000);
    expect(l.pro.apiCalls).toBe(-1);
    expect(l.pro.ratePerMinute).toBe(2_000);
    expect(DEFAULT_TIER_LIMITS.free.simulations).toBe(10);
  });

  it.each([
    ["QUOTA_FREE_SIMULATIONS", "ten"],
    ["QUOTA_FREE_SIMULATIONS", "-2"],
    ["QUOTA_BASIC_COST_USD", "1.1234567"],
    ["QUOTA_PRO_MAX_BATCH_SIZE", "101"],
    ["QUOTA_PRO_MAX_BATCH_SIZE", "0"],
    ["RATE_LIMIT_FREE_PER_MINUTE", "0"],
  ])("refuses %s=%s at boot, naming the key", (key, value) => {
    let err: unknown;
    try {
      parseTierLimits({ [key]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).keys).toEqual([key]);
  });
});
