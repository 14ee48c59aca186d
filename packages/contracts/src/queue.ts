import { z } from "zod";

/** Persisted names: never rename (queued jobs and streams carry them). */
export const SIMULATIONS_QUEUE = "simulations";
export const RUN_SIMULATION_JOB = "run-simulation";

export const RunSimulationPayloadSchema = z.object({
  jobId: z.string().regex(/^sim_[0-9a-f]{12}$/),
  requestId: z.string().max(200).nullable(),
});
export type RunSimulationPayload = z.infer<typeof RunSimulationPayloadSchema>;

/** Batch priority 0..100 (higher first) → BullMQ priority (1 is served first). */
export const toBullPriority = (priority: number): number => 101 - Math.min(100, Math.max(0, Math.round(priority)));

/** Redis key names, all under the deployment's prefix. */
export const redisKeys = (prefix: string) => ({
  events: `${prefix}:events`,
  eventsGroup: "reconcilers",
  /** Entries that were not valid events (dead letters, see EventStream.deadLetter). */
  eventsDead: `${prefix}:events:dead`,
  /** Stop request of a running job, checked by its worker at every step boundary. */
  cancel: (jobId: string) => `${prefix}:cancel:${jobId}`,
  /** Live spending of a capped batch's running jobs, added to at every step. */
  batchSpend: (batchId: string) => `${prefix}:batch-spend:${batchId}`,
  workers: `${prefix}:workers`,
  /** Pub/sub channel: "run a dispatch pass soon" (admission and cancel → reconcilers). */
  dispatchWake: `${prefix}:dispatch:wake`,
  /** Pub/sub channel of live-progress changes (ProgressChange: job and batch ids). */
  progress: `${prefix}:progress`,
  /** Open live streams of a user (sorted set of stream ids by last heartbeat). */
  streams: (userId: string) => `${prefix}:streams:${userId}`,
  apiCalls: (userId: string, period: string) => `${prefix}:usage:api:${period}:${userId}`,
  apiCallsDirty: `${prefix}:usage:api:dirty`,
});
