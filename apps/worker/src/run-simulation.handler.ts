import { RunSimulationPayloadSchema, type JobEvent } from "@simbatch/contracts";
import type { ClaimedJob, ClaimResult, ResultToStore } from "@simbatch/core";
import type { Db } from "@simbatch/db";
import type { ExportFormat, RunOutcome, SimulationEngine, SimulationSpec, TemporalMode } from "@simbatch/engine";
import type { Logger } from "@simbatch/logger";
import type { EventStream, StopSignals, StopVerdict } from "@simbatch/queue";
import { UnrecoverableError, type Job } from "bullmq";

export interface HandlerDeps {
  db: Db;
  /** Claims a job for a new attempt; the runtime shares one statement between the claims of a tick (ClaimBatcher). */
  claim: (jobId: string) => Promise<ClaimResult>;
  /** Stores a completed run's result; false when the attempt is stale. The runtime batches these (ResultWriter). */
  storeResult: (item: ResultToStore) => Promise<boolean>;
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

export function createRunSimulationHandler(deps: HandlerDeps) {
  return async function handle(bullJob: Job): Promise<{ outcome: string }> {
    const payload = RunSimulationPayloadSchema.safeParse(bullJob.data);
    if (!payload.success) throw new UnrecoverableError(`invalid payload: ${payload.error.issues[0]?.message}`);
    const { jobId, requestId } = payload.data;
    const claim = await deps.claim(jobId);
    if (claim.kind === "not-runnable") {
      deps.logger.info("job not runnable; skipped", { job_id: jobId, status: claim.status, request_id: requestId });
      return { outcome: "skipped" };
    }
    const base = { at: new Date().toISOString(), requestId, costMicros: 0, tokens: 0 };
    if (claim.kind === "cancel-requested") {
      await deps.events.publish({ type: "cancelled", jobId, attempt: claim.attempt, ...base });
      return { outcome: "cancelled" };
    }
    const job = claim.job;
    const log = deps.logger.child({ job_id: job.id, batch_id: job.batchId, attempt: job.attempt, request_id: job.requestId });
    log.debug("simulation started", { template_id: job.templateId });
    const event = (e: EventBody) =>
      deps.events.publish({ ...e, jobId: job.id, attempt: job.attempt, at: new Date().toISOString(), requestId: job.requestId } as JobEvent);
    // No `started` event: the claim itself moved the job (and a pending batch) to RUNNING.

    const outcome = await runWithReporting(deps, job, event);
    if (outcome === "shutdown") throw new ShutdownInterrupt(job.id);
    if (outcome.kind === "completed") {
      const stored = await deps.storeResult({ jobId: job.id, attempt: job.attempt, result: outcome.result, exports: outcome.exports });
      if (!stored) {
        // Another attempt owns the job now (this worker's lock lapsed and it was re-claimed) or it has ended.
        log.warn("simulation result refused: attempt is stale", { steps: outcome.steps });
        return { outcome: "stale" };
      }
      await event({ type: "completed", costMicros: outcome.costMicros, tokens: outcome.tokens });
      log.info("simulation completed", { steps: outcome.steps, cost_micros: outcome.costMicros, tokens: outcome.tokens });
      return { outcome: "completed" };
    }
    if (outcome.kind === "interrupted") {
      await event({ type: "cancelled", costMicros: outcome.costMicros, tokens: outcome.tokens });
      log.info("simulation interrupted", { steps: outcome.steps, cost_micros: outcome.costMicros });
      return { outcome: "cancelled" };
    }
    await event({ type: "failed", costMicros: outcome.costMicros, tokens: outcome.tokens, errorMessage: outcome.errorMessage });
    log.warn("simulation failed", { error: outcome.errorMessage, steps: outcome.steps });
    // A failed simulation is a result, not an infrastructure fault: never retried.
    throw new UnrecoverableError(outcome.errorMessage);
  };
}

async function runWithReporting(
  deps: HandlerDeps,
  job: ClaimedJob,
  event: (e: EventBody) => Promise<void>,
): Promise<RunOutcome | "shutdown"> {
  let verdict: StopVerdict = "continue";
  let lastCost = 0;
  let lastSent = 0;
  let finalProgress: EventBody | null = null;
  const batch = job.batchId ? { id: job.batchId, capMicros: job.budgetCapMicros } : null;
  const outcome = await deps.engine.run(toSpec(job), {
    stepDelayMs: deps.stepDelayMs,
    onStep: async (r) => {
      verdict = await deps.signals.stepBoundary(job.id, batch, r.costMicros - lastCost);
      lastCost = r.costMicros;
      const progress: EventBody = {
        type: "progress", costMicros: r.costMicros, tokens: r.tokens, progress: Math.min(99.99, (r.step / r.totalSteps) * 100), step: r.label,
      };
      if (r.step === r.totalSteps) {
        // The completed or failed event that follows carries the final spending; sent only if the run ends otherwise.
        finalProgress = progress;
        return;
      }
      const now = Date.now();
      if (now - lastSent >= deps.progressIntervalMs) {
        lastSent = now;
        await event(progress);
      }
    },
    shouldStop: async () => verdict !== "continue" || deps.shuttingDown(),
  });
  if (finalProgress && outcome.kind === "interrupted") await event(finalProgress);
  if (outcome.kind === "interrupted" && verdict === "continue" && deps.shuttingDown()) return "shutdown";
  return outcome;
}
