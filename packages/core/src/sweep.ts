import { activeJob } from "./sql.ts";
import type { JobEvent } from "@simbatch/contracts";
import { inTransaction } from "@simbatch/db";
import type { CoreDeps } from "./deps.ts";
import { applyEvents } from "./apply-events.ts";
import { evaluateBatches } from "./batch-state.ts";
import { dispatch } from "./dispatcher.ts";
import { SideEffects } from "./side-effects.ts";
import { announceOwedWebhooks } from "./webhooks.ts";
import { expireIdempotencyKeys } from "./idempotency.ts";

/** Default repair timeout (REPAIR_AFTER_MS). */
export const DEFAULT_REPAIR_AFTER_MS = 60_000;
/** Batches re-derived per sweep transaction. */
const SWEEP_CHUNK = 50;
/** How long a released job must be seen missing from BullMQ before the sweep re-queues it (a claim in flight commits well within it). */
export const RELEASED_MISSING_GRACE_MS = 2_000;
/** Rows each scan reads per sweep; the cursor goes on from there next time. */
const DEFAULT_SCAN_LIMIT = 1000;

export interface SweepOptions {
  /**
   * A recorded outcome whose event has not been applied this long is applied
   * from Postgres; a RUNNING job with no outcome that BullMQ has not held for
   * this long (as seen by this sweeper) is re-queued. Default 60 s.
   */
  repairAfterMs?: number;
  /**
   * A released (PENDING) job BullMQ has not held this long is re-queued: a worker may hold it with
   * its claim in flight while Redis has lost its BullMQ job. Default RELEASED_MISSING_GRACE_MS, at most repairAfterMs.
   */
  releasedGraceMs?: number;
  /** In-flight jobs and open batches read per sweep (each scan rotates). Default 1000. */
  scanLimit?: number;
}

type Cursor = { createdAt: Date; id: string } | null;

/**
 * What a sweeper remembers between passes: where each scan goes on (so every
 * in-flight job and open batch is re-checked even beyond the limit) and since
 * when it has seen a RUNNING job missing from BullMQ.
 */
export class SweepState {
  jobCursor: Cursor = null;
  batchCursor: Cursor = null;
  readonly missingSince = new Map<string, number>();
}

export interface SweepReport {
  requeued: number;
  resignalled: number;
  batchesChecked: number;
  released: number;
  /** Finished attempts whose lost events were applied from their recorded outcomes. */
  outcomesApplied: number;
}

interface InFlightRow {
  id: string;
  priority: number;
  request_id: string | null;
  cancel_requested: boolean;
  status: string;
  attempts: number;
  created_at: Date;
  outcome: string | null;
  outcome_cost: bigint | null;
  outcome_tokens: bigint | null;
  outcome_error: string | null;
  outcome_at: Date | null;
}

const TERMINAL_EVENT = { COMPLETED: "completed", FAILED: "failed", CANCELLED: "cancelled" } as const;

function outcomeEvent(j: InFlightRow): JobEvent {
  const base = {
    jobId: j.id,
    attempt: j.attempts,
    at: j.outcome_at!.toISOString(),
    requestId: j.request_id,
    costMicros: Number(j.outcome_cost ?? 0),
    tokens: Number(j.outcome_tokens ?? 0),
  };
  const type = TERMINAL_EVENT[j.outcome as keyof typeof TERMINAL_EVENT];
  return type === "failed" ? { type, ...base, errorMessage: j.outcome_error ?? "failed" } : { type, ...base };
}

/**
 * Repairs drift between Postgres (the truth) and Redis (transport), touching
 * only what is provably lost:
 * - an attempt whose outcome its worker recorded is never run again; when its
 *   event has not been applied `repairAfterMs` after the outcome (stream lost,
 *   entry stuck), the outcome itself is applied (guarded and idempotent like the event);
 * - a released job BullMQ has not held for RELEASED_MISSING_GRACE_MS is re-queued; a RUNNING job with no
 *   outcome is re-queued when BullMQ finished it (its attempt ended without an
 *   outcome: an error outside the engine; the claim caps attempts) or has not
 *   held it for `repairAfterMs` (Redis lost it; the worker, if alive, had time to finish);
 * - stop signals are re-sent, unfinished batches re-derived, then dispatch.
 * Both scans read `scanLimit` rows in (created_at, id) order from a rotating cursor.
 */
export async function sweep(deps: CoreDeps, opts: SweepOptions = {}, state = new SweepState()): Promise<SweepReport> {
  const repairAfterMs = opts.repairAfterMs ?? DEFAULT_REPAIR_AFTER_MS;
  const limit = opts.scanLimit ?? DEFAULT_SCAN_LIMIT;
  const jc = state.jobCursor;
  const inFlight = await deps.db.$queryRaw<InFlightRow[]>`
    SELECT j.id, j.priority, j.request_id, j.cancel_requested, j.status::text, j.attempts, j.created_at,
      o.status AS outcome, o.cost_micros AS outcome_cost, o.tokens AS outcome_tokens, o.error_message AS outcome_error, o.ended_at AS outcome_at
    FROM simulation_jobs j
    LEFT JOIN job_attempt_outcomes o ON j.status = 'RUNNING' AND o.job_id = j.id AND o.attempt = j.attempts
    WHERE ${activeJob("j")}
      AND (${jc === null}::boolean OR (j.created_at, j.id) > (${jc?.createdAt ?? new Date(0)}::timestamp, ${jc?.id ?? ""}::text))
    ORDER BY j.created_at, j.id LIMIT ${limit}::int`;
  const last = inFlight[inFlight.length - 1];
  state.jobCursor = inFlight.length < limit || !last ? null : { createdAt: last.created_at, id: last.id };

  let requeued = 0;
  const lostEvents: JobEvent[] = [];
  const now = Date.now();
  const seen = new Set<string>();
  for (const job of inFlight) {
    seen.add(job.id);
    if (job.outcome !== null) {
      // Finished: never re-queued. Applied from Postgres only once its event is overdue.
      state.missingSince.delete(job.id);
      if (job.outcome_at && now - job.outcome_at.getTime() >= repairAfterMs) lostEvents.push(outcomeEvent(job));
      continue;
    }
    const bull = await deps.queue.state(job.id);
    let lost: boolean;
    if (bull === "missing") {
      // RUNNING: its worker, if alive, had repairAfterMs to finish. PENDING (released): a worker may
      // hold it with its claim in flight while Redis has lost its BullMQ job (a wipe): re-queued at
      // once, a second claim would supersede the live attempt, so it must stay missing a moment first.
      const grace = job.status === "RUNNING" ? repairAfterMs : Math.min(repairAfterMs, opts.releasedGraceMs ?? RELEASED_MISSING_GRACE_MS);
      const since = state.missingSince.get(job.id) ?? now;
      state.missingSince.set(job.id, since);
      lost = now - since >= grace;
    } else {
      state.missingSince.delete(job.id);
      lost = bull === "completed" || bull === "failed";
    }
    if (lost && (await deps.queue.readd({ jobId: job.id, priority: job.priority, requestId: job.request_id }))) {
      requeued++;
      state.missingSince.delete(job.id);
      deps.logger.warn("re-enqueued a job with no live BullMQ job", { job_id: job.id, attempt: job.attempts, bullmq_state: bull, request_id: job.request_id });
    }
  }
  // Forget jobs no longer in flight (this pass read every in-flight job).
  if (jc === null && inFlight.length < limit) for (const id of [...state.missingSince.keys()]) if (!seen.has(id)) state.missingSince.delete(id);
  let outcomesApplied = 0;
  if (lostEvents.length > 0) {
    outcomesApplied = (await applyEvents(deps, lostEvents)).applied;
    if (outcomesApplied > 0) deps.logger.warn("applied recorded outcomes whose events were lost", { jobs: outcomesApplied });
  }
  const stopIds = inFlight.filter((j) => j.status === "RUNNING" && j.cancel_requested && j.outcome === null).map((j) => j.id);
  await deps.signals.requestStop(stopIds);

  // Unfinished batches (their partial index), re-derived a few at a time: each
  // transaction locks only a small set of batch rows, briefly.
  const bc = state.batchCursor;
  const open = await deps.db.$queryRaw<{ id: string; created_at: Date }[]>`
    SELECT id, created_at FROM batches WHERE completed_at IS NULL
      AND (${bc === null}::boolean OR (created_at, id) > (${bc?.createdAt ?? new Date(0)}::timestamp, ${bc?.id ?? ""}::text))
    ORDER BY created_at, id LIMIT ${limit}::int`;
  const lastBatch = open[open.length - 1];
  state.batchCursor = open.length < limit || !lastBatch ? null : { createdAt: lastBatch.created_at, id: lastBatch.id };
  const effects = new SideEffects();
  for (let i = 0; i < open.length; i += SWEEP_CHUNK) {
    const chunk = open.slice(i, i + SWEEP_CHUNK).map((b) => b.id);
    await inTransaction(deps.db, (tx) => evaluateBatches(deps, tx, chunk, effects));
  }
  await effects.run(deps);
  const released = await dispatch(deps);
  // Housekeeping that needs no lock: webhooks owed by a crash between a batch's end
  // and its enqueue, and idempotency records past their 24 h.
  const webhooksAnnounced = await announceOwedWebhooks(deps);
  if (webhooksAnnounced > 0) deps.logger.warn("enqueued webhooks a crash left owed", { batches: webhooksAnnounced });
  while ((await expireIdempotencyKeys(deps.db, deps.clock.now(), 1000)) === 1000);
  return { requeued, resignalled: stopIds.length, batchesChecked: open.length, released, outcomesApplied };
}
