export * from "./client.ts";
export { RawDb, prepared, PREPARED_PLAN_SETTINGS, DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS, type Raw, type TransactionOptions } from "./raw.ts";
export * from "./migrate.ts";
export { Prisma } from "./generated/client.ts";
export type { User, ApiKey, Batch, SimulationJob, LedgerEntry, UsagePeriod } from "./generated/client.ts";
export type { JobStatus, BatchStatus, StopReason, Tier, TemporalMode } from "./generated/enums.ts";
export * from "./errors.ts";
