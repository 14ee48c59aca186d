import { microsToUsd, usd, type BatchAggregate, type BatchWithAggregate, type DeliveryRow, type DryRunReport } from "@simbatch/core";
import type { Batch } from "@simbatch/db";

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/**
 * Projections (contract: Batch control → Projections), pure over the row and its
 * aggregate at `now`:
 * - eta_seconds: the batch's pace so far (jobs finished per second since it
 *   started) applied to the jobs left; null before any job finished and once the
 *   batch is finished; never 0 while unfinished.
 * - projected: the charges so far plus, per unfinished job, the mean charge of
 *   the finished ones (while none has finished: the unfinished jobs' estimates,
 *   i.e. the batch's estimate).
 */
export function batchProjection(batch: Batch, agg: BatchAggregate, now: Date): { etaSeconds: number | null; projectedMicros: bigint } {
  const done = agg.completed + agg.failed + agg.cancelled;
  const left = batch.totalJobs - done;
  if (batch.completedAt !== null || left <= 0) return { etaSeconds: null, projectedMicros: agg.chargedMicros };
  const projectedMicros =
    done === 0 ? agg.chargedMicros + batch.estimatedCostMicros : agg.chargedMicros + (agg.chargedMicros * BigInt(left) + BigInt(done) / 2n) / BigInt(done);
  if (done === 0) return { etaSeconds: null, projectedMicros };
  const since = (batch.startedAt ?? batch.createdAt).getTime();
  const elapsed = Math.max(0, now.getTime() - since) / 1000;
  const eta = Math.round(((left * elapsed) / done) * 1000) / 1000;
  return { etaSeconds: Math.max(eta, 0.001), projectedMicros };
}

/** A batch on the wire (contract: Batches → Batch object), from its row and its aggregate. */
export function batchView(batch: Batch, agg: BatchAggregate, now: Date = new Date()) {
  const done = agg.completed + agg.failed + agg.cancelled;
  const cap = batch.budgetCapMicros;
  const projection = batchProjection(batch, agg, now);
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
      // The contract's formula as it is, unrounded: (completed + failed + cancelled) / total × 100.
      progress_percent: batch.totalJobs === 0 ? 0 : (done / batch.totalJobs) * 100,
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
    paused: batch.paused,
    paused_at: iso(batch.pausedAt),
    eta_seconds: projection.etaSeconds,
    projected_cost_usd: usd(projection.projectedMicros),
    webhook_url: batch.webhookUrl,
  };
}
export type BatchView = ReturnType<typeof batchView>;

export const batchViewOf = (b: BatchWithAggregate): BatchView => batchView(b.batch, b.aggregate);

/** GET /simulations/batch: a page of batches. */
export function batchListView(page: { batches: BatchWithAggregate[]; total: number; page: number; pageSize: number }) {
  return { batches: page.batches.map(batchViewOf), total: page.total, page: page.page, page_size: page.pageSize };
}

/** POST /simulations/batch?dry_run=true when admissible (contract: Dry run). */
export function dryRunView(r: DryRunReport) {
  return {
    dry_run: true as const,
    total_jobs: r.totalJobs,
    estimated_cost_usd: usd(r.estimatedMicros),
    job_estimates_usd: r.jobEstimatesMicros.map((e) => usd(e)),
    simulations_remaining: r.simulationsRemaining,
    cost_remaining_usd: r.costRemainingMicros === -1 ? -1 : usd(r.costRemainingMicros),
  };
}

/** One job of a batch stream's `job` event (contract: Live progress). */
export function batchStreamJobView(j: { id: string; status: string; progressPercent: number; costMicros: bigint; errorMessage: string | null }) {
  return {
    job_id: j.id,
    status: j.status,
    progress_percent: Math.round(j.progressPercent * 100) / 100,
    cost_usd: usd(j.costMicros),
    error_message: j.errorMessage,
  };
}

/** A batch's webhook delivery log (contract: Webhooks). */
export function deliveriesView(rows: DeliveryRow[]) {
  return {
    deliveries: rows.map((d) => ({
      webhook_id: d.webhook_id,
      type: d.type,
      attempt: d.attempt,
      status_code: d.status_code,
      error: d.error,
      delivered: d.delivered,
      created_at: iso(d.created_at),
    })),
  };
}

/** The body POSTed to a batch's webhook_url when it ends. */
export const webhookEventView = (type: string, batch: BatchWithAggregate, createdAt: string) => ({ type, batch: batchViewOf(batch), created_at: createdAt });
