import { z } from "zod";
import { PERIOD_RE } from "./period.ts";
import { UserTier } from "./responses.ts";

/**
 * Request bodies of the admin routes (validated in apps/api, documented by the
 * OpenAPI generator from these same schemas).
 */

/** A tier word, case-insensitive. */
const tier = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.enum(UserTier.options));

export const CreateUserSchema = z.object({
  user_id: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, "must be 1-64 characters of letters, digits, . _ @ -"),
  tier: tier.nullish(),
});
export const UpdateUserSchema = z.object({ tier });
export const CreateKeySchema = z.object({ name: z.string().max(100).nullish() });

const countRule = "must be an integer from -1000000000 to 1000000000";
// One message for every wrong value: zod's own for int() names its safe-integer bound (for 1e300, say).
const count = z.number().int(countRule).min(-1_000_000_000, countRule).max(1_000_000_000, countRule);
export const UsageAdjustmentSchema = z
  .object({
    period: z.string().regex(PERIOD_RE, "must be YYYY-MM").nullish(),
    api_calls: count.nullish(),
    simulations: count.nullish(),
    // Whole micro-dollars only, so the ledger stays exact.
    cost_usd: z
      .number()
      .min(-1_000_000)
      .max(1_000_000)
      .refine((n) => Math.abs(n * 1e6 - Math.round(n * 1e6)) < 1e-6, "at most 6 decimals")
      .nullish(),
    tokens: count.nullish(),
    reason: z.string().trim().min(1, "is required").max(500),
  })
  .refine((b) => [b.api_calls, b.simulations, b.cost_usd, b.tokens].some((n) => n != null && n !== 0), {
    message: "at least one of api_calls, simulations, cost_usd, tokens must be non-zero",
  });
export type UsageAdjustmentRequest = z.infer<typeof UsageAdjustmentSchema>;
