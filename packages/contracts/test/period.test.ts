import {
  CreateBatchRequestSchema,
  daysRemaining,
  periodOf,
  secondsToNextPeriod,
  SimulationRequestSchema,
  toBullPriority,
  FAIR_SHARE_SPAN,
} from "../src/index.ts";

describe("billing periods", () => {
  it("uses the UTC calendar month", () => {
    expect(periodOf(new Date("2026-11-30T23:59:59.999Z"))).toBe("2026-11");
    expect(periodOf(new Date("2026-12-01T00:00:00.000Z"))).toBe("2026-12");
    expect(periodOf(new Date("2026-12-31T23:30:00-02:00"))).toBe("2027-01");
  });

  it("counts whole days left, 0 on the last day", () => {
    expect(daysRemaining(new Date("2026-11-30T12:00:00Z"))).toBe(0);
    expect(daysRemaining(new Date("2026-11-01T00:00:00Z"))).toBe(29);
    expect(daysRemaining(new Date("2027-02-27T08:00:00Z"))).toBe(1);
  });

  it("gives seconds to the next period", () => {
    expect(secondsToNextPeriod(new Date("2026-11-30T23:59:00Z"))).toBe(60);
  });
});

describe("request schemas", () => {
  it("accepts priority words case-insensitively and rejects out-of-range values", () => {
    const base = { simulations: [{ template_id: "board_meeting" }] };
    expect(CreateBatchRequestSchema.parse({ ...base, priority: "HIGH" }).priority).toBe(75);
    expect(CreateBatchRequestSchema.parse({ ...base, priority: "low" }).priority).toBe(25);
    expect(CreateBatchRequestSchema.safeParse({ ...base, priority: 101 }).success).toBe(false);
    expect(CreateBatchRequestSchema.safeParse({ ...base, priority: "urgent" }).success).toBe(false);
    expect(CreateBatchRequestSchema.safeParse({ ...base, parallel_jobs: "3" }).success).toBe(false);
    expect(CreateBatchRequestSchema.safeParse({ simulations: [] }).success).toBe(false);
  });

  it("does not coerce types and treats null as the default", () => {
    expect(SimulationRequestSchema.safeParse({ template_id: "x", generate_summaries: "yes" }).success).toBe(false);
    expect(SimulationRequestSchema.parse({ template_id: "x", entity_count: null }).entity_count).toBeNull();
    expect(SimulationRequestSchema.parse({ template_id: "x", temporal_mode: "portal" }).temporal_mode).toBe("PORTAL");
    expect(SimulationRequestSchema.safeParse({}).success).toBe(false);
  });

  it("maps priority, then fair-share place, onto BullMQ's order (lower first, within its limit)", () => {
    expect(toBullPriority(100)).toBeGreaterThanOrEqual(1);
    expect(toBullPriority(75)).toBeLessThan(toBullPriority(50));
    // Priority decides whatever the place: a higher priority's last place before a lower one's first.
    expect(toBullPriority(51, FAIR_SHARE_SPAN * 10)).toBeLessThan(toBullPriority(50, 0));
    // Within a priority, fewer jobs in flight first.
    expect(toBullPriority(50, 0)).toBeLessThan(toBullPriority(50, 1));
    expect(toBullPriority(50, 2)).toBeLessThan(toBullPriority(50, 7));
    expect(toBullPriority(0, FAIR_SHARE_SPAN * 10)).toBeLessThanOrEqual(2 ** 21 - 1); // BullMQ's PRIORITY_LIMIT
  });
});
