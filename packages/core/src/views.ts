import type { Batch, SimulationJob } from "@simbatch/db";
import { microsToUsd, usd } from "./deps.ts";

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** A job row on the wire (contract: Simulations → Job object). */
export function jobView(job: SimulationJob) {
  return {
    job_id: job.id,
    batch_id: job.batchId,
    status: job.status,
    created_at: iso(job.createdAt),
    started_at: iso(job.startedAt),
    completed_at: iso(job.completedAt),
    template_id: job.templateId,
    description: job.description,
    entity_count: job.entityCount,
    timepoint_count: job.timepointCount,
    temporal_mode: job.temporalMode,
    config: job.config,
    generate_summaries: job.generateSummaries,
    export_formats: job.exportFormats,
    progress_percent: Math.round(job.progressPercent * 100) / 100,
    current_step: job.currentStep,
    attempts: job.attempts,
    estimated_cost_usd: usd(job.estimatedCostMicros),
    cost_usd: usd(job.costMicros),
    tokens_used: Number(job.tokensUsed),
    error_message: job.errorMessage,
    cancel_reason: job.cancelReason,
    owner_id: job.ownerId,
    metadata: job.metadata ?? null,
  };
}
export type JobView = ReturnType<typeof jobView>;

/** Per-batch counters (kept on the batch row by the jobs trigger; running counted live). */
export interface BatchAggregate {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  chargedMicros: bigint;
  tokens: bigint;
  jobIds: string[];
}

export function batchView(batch: Batch, agg: BatchAggregate) {
  const done = agg.completed + agg.failed + agg.cancelled;
  const cap = batch.budgetCapMicros;
  return {
    batch_id: batch.id,
    status: batch.status,
    created_at: iso(batch.createdAt),
    started_at: iso(batch.startedAt),
    completed_at: iso(batch.completedAt),
    priority: batch.priority,
    fail_fast: batch.failFast,
    parallel_jobs: batch.parallelJobs,
    progress: {
      total_jobs: batch.totalJobs,
      pending_jobs: agg.pending,
      running_jobs: agg.running,
      completed_jobs: agg.completed,
      failed_jobs: agg.failed,
      cancelled_jobs: agg.cancelled,
      progress_percent: batch.totalJobs === 0 ? 0 : Math.round((done / batch.totalJobs) * 10_000) / 100,
    },
    cost: {
      estimated_cost_usd: usd(batch.estimatedCostMicros),
      actual_cost_usd: usd(agg.chargedMicros),
      budget_cap_usd: microsToUsd(cap),
      budget_remaining_usd: cap === null ? null : usd(cap > agg.chargedMicros ? cap - agg.chargedMicros : 0n),
      tokens_used: Number(agg.tokens),
    },
    job_ids: agg.jobIds,
    stop_reason: batch.stopReason,
    error_message: batch.errorMessage,
    cancel_reason: batch.cancelReason,
    owner_id: batch.ownerId,
    metadata: batch.metadata ?? null,
  };
}
export type BatchView = ReturnType<typeof batchView>;
