export { Simbatch, type WaitOptions } from "./client.ts";
export { DEFAULT_BASE_URL, newIdempotencyKey, type ClientOptions, type CreateOptions, type RequestOptions } from "./http.ts";
export { DEFAULT_RETRY, type RetryPolicy } from "./retry.ts";
export { batchDone, type StreamOptions } from "./events.ts";
export * from "./errors.ts";
export type * from "./types.ts";
export type { Batches, ListBatchesParams } from "./resources/batches.ts";
export type { Simulations, ListJobsParams } from "./resources/simulations.ts";
export type { UsageApi, Templates, Webhooks } from "./resources/account.ts";
