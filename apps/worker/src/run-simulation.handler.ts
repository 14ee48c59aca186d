import { RunSimulationPayloadSchema, type JobEvent } from "@simbatch/contracts";
import { STORED_EXPORT_FORMATS, type ClaimedJob, type ClaimResult, type EndVerdict, type OutcomeToRecord, type ResultToStore } from "@simbatch/core";
import type { Db } from "@simbatch/db";
import { renderExport, type ExportFormat, type RunOutcome, type SimulationEngine, type SimulationSpec, type TemporalMode } from "@simbatch/engine";
import type { Logger } from "@simbatch/logger";
import { UnrecoverableError, type EventStream, type Job, type StopSignals, type StopVerdict } from "@simbatch/queue";

export interface HandlerDeps {
  db: Db;
  /** Claims a job for a new attempt; the runtime shares one statement between the claims of a tick (ClaimBatcher). */
  claim: (jobId: string) => Promise<ClaimResult>;
  /**
   * Ends a completed run with its result and charge; `stop-requested` when a stop came while its
   * last step ran (it then ends CANCELLED), `stale` when another attempt owns the job. The runtime
   * batches these (ResultWriter).
   */
  storeResult: (item: ResultToStore) => Promise<EndVerdict>;
  /**
   * Records a failed or interrupted attempt's outcome in Postgres before its
   * event is published; false when the attempt is stale. The runtime batches
   * these (OutcomeWriter). Absent: nothing is recorded (unit tests).
   */
  recordOutcome?: (item: OutcomeToRecord) => Promise<boolean>;
  events: EventStream;
  signals: StopSignals;
  engine: SimulationEngine;
  logger: Logger;
  stepDelayMs: number;
  /** Minimum gap between two progress events of one job. */
  progressIntervalMs: number;
  /** True once SIGTERM arrived: running jobs stop at their next step and are retried elsewhere. */
  shuttingDown: () => boolean;
}

/** Thrown when a run was interrupted by shutdown: BullMQ retries it, the attempt is not charged. */
export class ShutdownInterrupt extends Error {
  constructor(jobId: string) {
    super(`worker shutting down; ${jobId} will be retried`);
  }
}

/** An event as a handler writes it; identity and time are filled in per job. */
type EventBody = JobEvent extends infer E ? (E extends JobEvent ? Omit<E, "jobId" | "attempt" | "at" | "requestId"> : never) : never;

const toSpec = (job: ClaimedJob): SimulationSpec => ({
  jobId: job.id,
  templateId: job.templateId,
  description: job.description,
  entityCount: job.entityCount,
  timepointCount: job.timepointCount,
  temporalMode: job.temporalMode as TemporalMode,
  config: job.config,
  generateSummaries: job.generateSummaries,
  exportFormats: job.exportFormats as ExportFormat[],
});

/**
 * Retries a write of a finished attempt through a short outage (Postgres
 * restarting): the run is done, and throwing would run it again. Up to ~20 s,
 * never past shutdown.
 */
async function durably<T>(deps: HandlerDeps, what: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (let wait = 100; ; wait = Math.min(2_000, wait * 2)) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() + wait > deadline || deps.shuttingDown()) throw err;
      deps.logger.warn(`${what} failed; retrying`, { error: String(err) });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export function createRunSimulationHandler(deps: HandlerDeps) {
  return async function handle(bullJob: Job): Promise<{ outcome: string }> {
    const payload = RunSimulationPayloadSchema.safeParse(bullJob.data);
    if (!payload.success) throw new UnrecoverableError(`invalid payload: ${payload.error.issues[0]?.message}`);
    const { jobId, requestId } = payload.data;
    const claim = await deps.claim(jobId);
    if (claim.kind === "not-runnable") {
      deps.logger.info("job not runnable; skipped", { job_id: jobId, status: claim.status, request_id: requestId });
      // Still waiting (a pause took it back after this worker fetched it): the BullMQ job must not outlive this
      // skip, or its id, which is the row's, would make the next release's add a no-op and the job would wait
      // for the sweep's repair. BullMQ reads the option when it completes the job, in the same script.
      if (claim.status === "PENDING") bullJob.opts.removeOnComplete = true;
      return { outcome: "skipped" };
    }
    const record = async (o: OutcomeToRecord) => (deps.recordOutcome ? durably(deps, "recording an outcome", () => deps.recordOutcome!(o)) : true);
    if (claim.kind === "finished") {
      // Its attempt ran to the end: the outcome is in Postgres and its event in the stream (or the sweep applies it).
      deps.logger.info("job already finished its attempt; not run again", { job_id: jobId, attempt: claim.attempt, request_id: requestId });
      return { outcome: "skipped" };
    }
    if (claim.kind === "exhausted") {
      // The claim recorded the FAILED outcome; the event lets the reconciler end and charge it now.
      await deps.events.publish({
        type: "failed",
        jobId,
        attempt: claim.attempt,
        at: claim.at.toISOString(),
        requestId: claim.requestId,
        costMicros: claim.costMicros,
        tokens: claim.tokens,
        errorMessage: claim.errorMessage,
      });
      deps.logger.warn("job used its attempts; failed", { job_id: jobId, attempt: claim.attempt, request_id: requestId });
      return { outcome: "failed" };
    }
    if (claim.kind === "cancel-requested") {
      const at = new Date();
      if (!(await record({ jobId, attempt: claim.attempt, status: "CANCELLED", costMicros: 0, tokens: 0, errorMessage: null, at })))
        return { outcome: "stale" };
      await deps.events.publish({ type: "cancelled", jobId, attempt: claim.attempt, at: at.toISOString(), requestId, costMicros: 0, tokens: 0 });
      return { outcome: "cancelled" };
    }
    const job = claim.job;
    const log = deps.logger.child({ job_id: job.id, batch_id: job.batchId, attempt: job.attempt, request_id: job.requestId });
    log.debug("simulation started", { template_id: job.templateId });
    const event = (e: EventBody, at = new Date()) =>
      deps.events.publish({ ...e, jobId: job.id, attempt: job.attempt, at: at.toISOString(), requestId: job.requestId } as JobEvent);
    // No `started` event: the claim itself moved the job (and a pending batch) to RUNNING.

    const run = await runWithReporting(deps, job, event);
    if (run === "shutdown") throw new ShutdownInterrupt(job.id);
    const { outcome, verdict, lastProgress } = run;
    // Every end is made durable first (guarded on this attempt), then published:
    // a finished attempt is never run again, whatever the reconciler's lag. A
    // completed attempt is ended and charged with its result, in one statement.
    const at = new Date();
    if (outcome.kind === "completed") {
      // Only the costly formats are rendered here and stored; the API renders the others from the result on download.
      const formats = STORED_EXPORT_FORMATS.filter((f) => job.exportFormats.includes(f));
      const exports = await Promise.all(formats.map((f) => renderExport(outcome.result, f)));
      const stored = await durably(deps, "ending a completed run", () =>
        deps.storeResult({
          jobId: job.id,
          attempt: job.attempt,
          result: outcome.result,
          exports,
          costMicros: outcome.costMicros,
          tokens: outcome.tokens,
          at,
        }),
      );
      if (stored === "stale") {
        // Another attempt owns the job now (this worker's lock lapsed and it was re-claimed) or it has ended.
        log.warn("simulation result refused: attempt is stale", { steps: outcome.steps });
        return { outcome: "stale" };
      }
      if (stored === "ended") {
        await event({ type: "completed", costMicros: outcome.costMicros, tokens: outcome.tokens, ended: true, batchId: job.batchId }, at);
        log.info("simulation completed", { steps: outcome.steps, cost_micros: outcome.costMicros, tokens: outcome.tokens });
        return { outcome: "completed" };
      }
      // A stop (cancel, fail-fast, budget) was requested while the last step ran: the run
      // reached its step boundary, where a stopped run is interrupted and ends CANCELLED with
      // what it spent, as if the stop had been read there. Its last step's progress goes first.
      if (lastProgress) await event(lastProgress);
    }
    const base = { jobId: job.id, attempt: job.attempt, costMicros: outcome.costMicros, tokens: outcome.tokens, at };
    if (outcome.kind === "interrupted" || outcome.kind === "completed") {
      if (!(await record({ ...base, status: "CANCELLED", errorMessage: null }))) {
        log.warn("interrupted attempt is stale; nothing published", { steps: outcome.steps });
        return { outcome: "stale" };
      }
      await event({ type: "cancelled", costMicros: outcome.costMicros, tokens: outcome.tokens, ...(verdict === "budget" ? { stoppedBy: "budget" } : {}) }, at);
      log.info("simulation interrupted", {
        steps: outcome.steps,
        cost_micros: outcome.costMicros,
        stopped_by: outcome.kind === "completed" ? "a stop requested during its last step" : verdict,
      });
      return { outcome: "cancelled" };
    }
    if (!(await record({ ...base, status: "FAILED", errorMessage: outcome.errorMessage }))) {
      log.warn("failed attempt is stale; nothing published", { steps: outcome.steps });
      return { outcome: "stale" };
    }
    await event({ type: "failed", costMicros: outcome.costMicros, tokens: outcome.tokens, errorMessage: outcome.errorMessage }, at);
    log.warn("simulation failed", { error: outcome.errorMessage, steps: outcome.steps });
    // A failed simulation is a result, not an infrastructure fault: never retried.
    throw new UnrecoverableError(outcome.errorMessage);
  };
}

async function runWithReporting(
  deps: HandlerDeps,
  job: ClaimedJob,
  event: (e: EventBody) => Promise<void>,
): Promise<{ outcome: RunOutcome; verdict: StopVerdict; lastProgress: EventBody | null } | "shutdown"> {
  let verdict: StopVerdict = "continue";
  let lastCost = 0;
  let lastSent = 0;
  // The latest progress not sent yet (coalesced away, or the last step's): a run that
  // ends other than completed sends it before its end, so a failed or interrupted job
  // shows the step it reached, not the last one that happened to be sent.
  let unsent: EventBody | null = null;
  // Only a capped batch keeps a live spending total (its cap is fixed at creation).
  const capped = job.batchId && job.budgetCapMicros !== null ? { id: job.batchId, capMicros: job.budgetCapMicros } : null;
  const outcome = await deps.engine.run(toSpec(job), {
    stepDelayMs: deps.stepDelayMs,
    onStep: async (r) => {
      // After the last step nothing asks whether to stop: its boundary only adds the
      // step's spending to a capped batch's live total, and without a cap it is skipped.
      if (r.step < r.totalSteps || capped) verdict = await deps.signals.stepBoundary(job.id, capped, r.costMicros - lastCost);
      lastCost = r.costMicros;
      const progress: EventBody = {
        type: "progress",
        costMicros: r.costMicros,
        tokens: r.tokens,
        progress: Math.min(99.99, (r.step / r.totalSteps) * 100),
        step: r.label,
      };
      unsent = progress;
      // The completed event that follows the last step carries the final spending.
      if (r.step === r.totalSteps) return;
      const now = Date.now();
      if (now - lastSent >= deps.progressIntervalMs) {
        lastSent = now;
        unsent = null;
        await event(progress);
      }
    },
    shouldStop: async () => verdict !== "continue" || deps.shuttingDown(),
  });
  if (unsent && outcome.kind !== "completed") await event(unsent);
  if (outcome.kind === "interrupted" && verdict === "continue" && deps.shuttingDown()) return "shutdown";
  return { outcome, verdict, lastProgress: outcome.kind === "completed" ? unsent : null };
}
