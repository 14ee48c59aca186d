import { z } from "zod";

/**
 * Job lifecycle events, appended by workers to a Redis Stream and applied by
 * reconcilers. Every event names its attempt, so a stale attempt's event (a
 * crashed worker's) never overwrites the current one.
 */
const base = {
  jobId: z.string(),
  attempt: z.number().int().min(1),
  at: z.string(),
  requestId: z.string().nullable(),
  costMicros: z.number().int().min(0),
  tokens: z.number().int().min(0),
};

export const JobEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("started"), ...base }),
  z.object({ type: z.literal("progress"), ...base, progress: z.number().min(0).max(100), step: z.string().nullable() }),
  /**
   * `ended: true`: the worker's result statement already ended the attempt and
   * charged it in Postgres; the reconciler only re-derives its batch (`batchId`)
   * and wakes dispatch. Without it (a worker of an older release) the reconciler
   * ends and charges the attempt itself.
   */
  z.object({ type: z.literal("completed"), ...base, ended: z.literal(true).optional(), batchId: z.string().nullable().optional() }),
  z.object({ type: z.literal("failed"), ...base, errorMessage: z.string() }),
  /** `stoppedBy: "budget"`: the batch's spending reached its cap (the budget interrupted the job). */
  z.object({ type: z.literal("cancelled"), ...base, stoppedBy: z.enum(["cancel", "budget"]).optional() }),
]);
export type JobEvent = z.infer<typeof JobEventSchema>;
