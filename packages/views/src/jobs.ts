import { usd } from "@simbatch/core";
import type { SimulationJob } from "@simbatch/db";

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

/** GET /simulations: a page of jobs. */
export function jobListView(page: { jobs: SimulationJob[]; total: number; page: number; pageSize: number }) {
  return { jobs: page.jobs.map(jobView), total: page.total, page: page.page, page_size: page.pageSize };
}
