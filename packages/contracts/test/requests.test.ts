import { CreateBatchRequestSchema, ListBatchesQuerySchema, UsageHistoryQuerySchema } from "../src/index.ts";

const sims = [{ template_id: "board_meeting" }];
/** The messages a 422 would carry, by path. */
const issues = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  (r.error?.issues ?? []).map((i) => `${i.path.join(".")}: ${i.message}`);

describe("request schemas say what is wrong", () => {
  it("priority: one message naming the range and the words, whatever the wrong value", () => {
    for (const priority of [50.5, 101, -1, "urgent", "75", true]) {
      expect({ priority, issues: issues(CreateBatchRequestSchema.safeParse({ simulations: sims, priority })) }).toEqual({
        priority,
        issues: ["priority: must be an integer 0..100 or one of low, normal, high"],
      });
    }
    expect(CreateBatchRequestSchema.parse({ simulations: sims, priority: "HIGH" }).priority).toBe(75);
    expect(CreateBatchRequestSchema.parse({ simulations: sims, priority: 0 }).priority).toBe(0);
  });

  it("budget_cap_usd: a cap below one micro-dollar is refused, not stored as 0", () => {
    for (const cap of [0, -1, 0.0000001, 0.0000009]) {
      expect(issues(CreateBatchRequestSchema.safeParse({ simulations: sims, budget_cap_usd: cap }))).toEqual([
        "budget_cap_usd: must be at least 0.000001 (one micro-dollar)",
      ]);
    }
    expect(CreateBatchRequestSchema.parse({ simulations: sims, budget_cap_usd: 0.000001 }).budget_cap_usd).toBe(0.000001);
  });

  it("integer query parameters name their range for every wrong value", () => {
    for (const page of ["-1", "0", "1.5", "x", "1000001"]) {
      expect(issues(ListBatchesQuerySchema.safeParse({ page }))).toEqual(["page: must be an integer 1..1000000"]);
    }
    expect(issues(ListBatchesQuerySchema.safeParse({ page_size: "101" }))).toEqual(["page_size: must be an integer 1..100"]);
    expect(issues(UsageHistoryQuerySchema.safeParse({ periods: "0" }))).toEqual(["periods: must be an integer 1..24"]);
    expect(ListBatchesQuerySchema.parse({ page: "2", page_size: "" })).toEqual({ page: 2 });
  });
});
