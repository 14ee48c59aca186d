import { z } from "zod";

/** Persisted names: never rename (queued jobs and streams carry them). */
export const SIMULATIONS_QUEUE = "simulations";
export const RUN_SIMULATION_JOB = "run-simulation";

export const RunSimulationPayloadSchema = z.object({
  jobId: z.string().regex(/^sim_[0-9a-f]{12}$/),
  requestId: z.string().max(200).nullable(),
});
export type RunSimulationPayload = z.infer<typeof RunSimulationPayloadSchema>;

/**
 * How many places of fair share one batch priority spans in a BullMQ priority (below
 * BullMQ's limit of 2^21 - 1 with 101 priorities).
 */
export const FAIR_SHARE_SPAN = 10_000;

/**
 * Batch priority 0..100 (higher first) and fair-share place → BullMQ priority (lower is
 * served first). The priority decides first. Within one priority, `share` is how many jobs
 * the owner had released or running when this one was released: BullMQ serves the jobs of
 * an owner with fewer in flight first, so a second user's jobs go ahead of those the
 * look-ahead already queued for a first user (contract: equal priorities share the workers
 * fairly). Equal places are served in the order they were added.
 */
export const toBullPriority = (priority: number, share = 0): number =>
  (101 - Math.min(100, Math.max(0, Math.round(priority)))) * FAIR_SHARE_SPAN + Math.min(FAIR_SHARE_SPAN - 1, Math.max(0, Math.floor(share)));

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
  /** Job outcomes and durations per template (JobMetrics), read by the API at scrape time. */
  jobMetrics: `${prefix}:metrics:jobs`,
});
