export * from "./client.ts";
export { RawDb, prepared, PREPARED_PLAN_SETTINGS, type Raw, type TransactionOptions } from "./raw.ts";
export * from "./migrate.ts";
export { Prisma } from "./generated/client.ts";
export type { User, ApiKey, Batch, SimulationJob, LedgerEntry, UsagePeriod } from "./generated/client.ts";
export type { JobStatus, BatchStatus, StopReason, Tier, TemporalMode } from "./generated/enums.ts";
export * from "./errors.ts";
