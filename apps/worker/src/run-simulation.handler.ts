import { RunSimulationPayloadSchema, type JobEvent } from "@simbatch/contracts";
import { claimJob, storeResult, type ClaimedJob } from "@simbatch/core";
import type { Db } from "@simbatch/db";
import type { ExportFormat, RunOutcome, SimulationEngine, SimulationSpec, TemporalMode } from "@simbatch/engine";
import type { Logger } from "@simbatch/logger";
import type { EventStream, StopSignals, StopVerdict } from "@simbatch/queue";
import { UnrecoverableError, type Job } from "bullmq";

export interface HandlerDeps {
  db: Db;
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
    const claim = await claimJob(deps.db, jobId);
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
    log.info("simulation started", { template_id: job.templateId });
    const event = (e: EventBody) =>
      deps.events.publish({ ...e, jobId: job.id, attempt: job.attempt, at: new Date().toISOString(), requestId: job.requestId } as JobEvent);
    await event({ type: "started", costMicros: 0, tokens: 0 });

    const outcome = await runWithReporting(deps, job, event);
    if (outcome === "shutdown") throw new ShutdownInterrupt(job.id);
    if (outcome.kind === "completed") {
      await storeResult(deps.db, job.id, job.attempt, outcome.result, outcome.exports);
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
  const batch = job.batchId ? { id: job.batchId, capMicros: job.budgetCapMicros } : null;
  const outcome = await deps.engine.run(toSpec(job), {
    stepDelayMs: deps.stepDelayMs,
    onStep: async (r) => {
      verdict = await deps.signals.stepBoundary(job.id, batch, r.costMicros - lastCost);
      lastCost = r.costMicros;
      const now = Date.now();
      if (now - lastSent >= deps.progressIntervalMs || r.step === r.totalSteps) {
        lastSent = now;
        const progress = Math.min(99.99, (r.step / r.totalSteps) * 100);
        await event({ type: "progress", costMicros: r.costMicros, tokens: r.tokens, progress, step: r.label });
      }
    },
    shouldStop: async () => verdict !== "continue" || deps.shuttingDown(),
  });
  if (outcome.kind === "interrupted" && verdict === "continue" && deps.shuttingDown()) return "shutdown";
  return outcome;
}
