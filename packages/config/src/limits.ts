import { usdToMicros } from "@simbatch/contracts";
import { ConfigError, TIERS, type Tier } from "./env.ts";

/** Per-tier limits; -1 means unlimited. Money in micro-dollars. */
export interface TierLimits {
  apiCalls: number;
  simulations: number;
  costMicros: number;
  maxBatchSize: number;
  concurrency: number;
  ratePerMinute: number;
}

export const DEFAULT_TIER_LIMITS: Record<Tier, TierLimits> = {
  free: { apiCalls: 1_000, simulations: 10, costMicros: 1_000_000, maxBatchSize: 5, concurrency: 1, ratePerMinute: 60 },
  basic: { apiCalls: 10_000, simulations: 100, costMicros: 10_000_000, maxBatchSize: 20, concurrency: 3, ratePerMinute: 300 },
  pro: { apiCalls: 100_000, simulations: 1_000, costMicros: 100_000_000, maxBatchSize: 50, concurrency: 10, ratePerMinute: 1_000 },
  enterprise: { apiCalls: -1, simulations: -1, costMicros: -1, maxBatchSize: 100, concurrency: -1, ratePerMinute: 5_000 },
};

/** Env suffix → field; e.g. QUOTA_FREE_SIMULATIONS=20, RATE_LIMIT_PRO_PER_MINUTE=2000. */
const QUOTA_KEYS: Record<string, keyof TierLimits> = {
  API_CALLS: "apiCalls",
  SIMULATIONS: "simulations",
  COST_USD: "costMicros",
  MAX_BATCH_SIZE: "maxBatchSize",
  CONCURRENCY: "concurrency",
};

function parseLimit(key: string, raw: string, field: keyof TierLimits): number {
  const isCost = field === "costMicros";
  const ok = isCost ? /^(-1|\d+(\.\d{1,6})?)$/.test(raw) : /^(-1|\d+)$/.test(raw);
  if (!ok) throw new ConfigError([key], `invalid environment: ${key}: must be ${isCost ? "a non-negative amount in USD" : "a non-negative integer"} or -1`);
  const n = Number(raw);
  if (field === "maxBatchSize" && (n < 1 || n > 100)) throw new ConfigError([key], `invalid environment: ${key}: must be 1..100`);
  if (field === "ratePerMinute" && n < 1) throw new ConfigError([key], `invalid environment: ${key}: must be at least 1`);
  return isCost && n !== -1 ? usdToMicros(n) : n;
}

/** Tier limits with per-deployment overrides from env, validated at boot. */
export function parseTierLimits(env: NodeJS.ProcessEnv): Record<Tier, TierLimits> {
  const limits = structuredClone(DEFAULT_TIER_LIMITS);
  for (const tier of TIERS) {
    const t = tier.toUpperCase();
    for (const [suffix, field] of Object.entries(QUOTA_KEYS)) {
      const key = `QUOTA_${t}_${suffix}`;
      const raw = env[key];
      if (raw !== undefined && raw !== "") limits[tier][field] = parseLimit(key, raw, field);
    }
    const rateKey = `RATE_LIMIT_${t}_PER_MINUTE`;
    const rate = env[rateKey];
    if (rate !== undefined && rate !== "") limits[tier].ratePerMinute = parseLimit(rateKey, rate, "ratePerMinute");
  }
  return limits;
}
