import { TIERS } from "@simbatch/config";
import { UpdateUserSchema, UserTier } from "../src/index.ts";

describe("admin request schemas", () => {
  it("take the tiers the service knows, case-insensitive", () => {
    expect(UserTier.options).toEqual([...TIERS]);
    expect(UpdateUserSchema.parse({ tier: "PRO" })).toEqual({ tier: "pro" });
    expect(UpdateUserSchema.safeParse({ tier: "gold" }).success).toBe(false);
  });
});
