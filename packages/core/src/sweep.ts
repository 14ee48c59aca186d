import { inTransaction } from "@simbatch/db";
import type { CoreDeps } from "./deps.ts";
import { evaluateBatches } from "./batch-state.ts";
import { dispatch } from "./dispatcher.ts";
import { SideEffects } from "./side-effects.ts";

/** A BullMQ job that finished this long ago with Postgres still not updated has lost its event. */
const LOST_EVENT_MS = 60_000;
/** Batches re-derived per sweep transaction. */
const SWEEP_CHUNK = 50;

export interface SweepReport {
  requeued: number;
  resignalled: number;
  batchesChecked: number;
  released: number;
}

/**
 * Repairs drift between Postgres (the truth) and Redis (transport): re-enqueues
 * released or running jobs that have no live BullMQ job, re-sends stop signals,
 * re-derives unfinished batches, then dispatches.
 */
export async function sweep(deps: CoreDeps): Promise<SweepReport> {
  const inFlight = await deps.db.$queryRaw<{ id: string; priority: number; request_id: string | null; cancel_requested: boolean; status: string }[]>`
    SELECT id, priority, request_id, cancel_requested, status::text FROM simulation_jobs
    WHERE status = 'RUNNING' OR (status = 'PENDING' AND released_at IS NOT NULL)
    ORDER BY created_at LIMIT 1000`;
  let requeued = 0;
  for (const job of inFlight) {
    const state = await deps.queue.state(job.id);
    // A finished BullMQ job whose row still reads RUNNING normally has its event in
    // the stream, about to be applied: only one finished long ago lost its event.
    const finished = state === "completed" || state === "failed";
    const lost = state === "missing" || (finished && (await finishedLongAgo(deps, job.id)));
    if (lost && (await deps.queue.readd({ jobId: job.id, priority: job.priority, requestId: job.request_id }))) {
      requeued++;
      deps.logger.warn("re-enqueued a job with no live BullMQ job", { job_id: job.id, bullmq_state: state, request_id: job.request_id });
    }
  }
  const stopIds = inFlight.filter((j) => j.status === "RUNNING" && j.cancel_requested).map((j) => j.id);
  await deps.signals.requestStop(stopIds);

  // Unfinished batches (their partial index), re-derived a few at a time: each
  // transaction locks only a small set of batch rows, briefly.
  const open = await deps.db.$queryRaw<{ id: string }[]>`
    SELECT id FROM batches WHERE completed_at IS NULL ORDER BY created_at LIMIT 1000`;
  const effects = new SideEffects();
  for (let i = 0; i < open.length; i += SWEEP_CHUNK) {
    const chunk = open.slice(i, i + SWEEP_CHUNK).map((b) => b.id);
    await inTransaction(deps.db, (tx) => evaluateBatches(deps, tx, chunk, effects));
  }
  await effects.run(deps);
  const released = await dispatch(deps);
  return { requeued, resignalled: stopIds.length, batchesChecked: open.length, released };
}

async function finishedLongAgo(deps: CoreDeps, jobId: string): Promise<boolean> {
  const job = await deps.queue.queue.getJob(jobId);
  return !!job?.finishedOn && Date.now() - job.finishedOn > LOST_EVENT_MS;
}
