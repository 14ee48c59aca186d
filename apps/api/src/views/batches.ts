import { microsToUsd, usd, type BatchAggregate, type BatchWithAggregate } from "@simbatch/core";
import type { Batch } from "@simbatch/db";

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** A batch on the wire (contract: Batches → Batch object), from its row and its aggregate. */
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

export const batchViewOf = (b: BatchWithAggregate): BatchView => batchView(b.batch, b.aggregate);

/** GET /simulations/batch: a page of batches. */
export function batchListView(page: { batches: BatchWithAggregate[]; total: number; page: number; pageSize: number }) {
  return { batches: page.batches.map(batchViewOf), total: page.total, page: page.page, page_size: page.pageSize };
}
