import type { CoreDeps } from "./deps.ts";
import { announceBatchEnds } from "./webhooks.ts";

/**
 * Redis-side effects decided inside a Postgres transaction and carried out
 * after it commits: stop signals for running jobs, budget-exhausted marks for
 * capped batches, removal of released jobs that were cancelled before a worker
 * took them, whether a dispatch pass should follow, the live-progress news of
 * what changed, and the webhooks of batches that ended. All are repeatable; the
 * sweep re-issues stop signals and owed webhooks, and a cancelled job's claim
 * fails on its row, so a crash between commit and here loses nothing (a lost
 * progress message only delays a stream to its next refresh).
 */
export class SideEffects {
  readonly stopJobs = new Set<string>();
  readonly unqueueJobs = new Set<string>();
  readonly budgetExhaustedBatches = new Set<string>();
  /** Jobs whose row changed, with their batch (live progress). */
  readonly changedJobs = new Map<string, string | null>();
  /** Batches whose row changed (live progress). */
  readonly changedBatches = new Set<string>();
  /** Batches that reached their end in this transaction (webhooks). */
  readonly endedBatches = new Set<string>();
  wantDispatch = false;

  jobChanged(jobId: string, batchId: string | null): void {
    this.changedJobs.set(jobId, batchId);
    if (batchId) this.changedBatches.add(batchId);
  }

  async run(deps: Pick<CoreDeps, "db" | "queue" | "signals" | "logger" | "progress" | "webhooks">): Promise<void> {
    try {
      await deps.signals.requestStop([...this.stopJobs]);
      for (const batchId of this.budgetExhaustedBatches) await deps.signals.markBudgetExhausted(batchId);
      await Promise.all([...this.unqueueJobs].map((id) => deps.queue.removeWaiting(id)));
    } catch (err) {
      deps.logger.warn("side effects failed; the sweep will repeat them", { error: String(err) });
    }
    if (this.endedBatches.size > 0) {
      await announceBatchEnds(deps, [...this.endedBatches]).catch((err) =>
        deps.logger.warn("webhook enqueue failed; the sweep will enqueue it", { error: String(err) }),
      );
    }
    await deps.progress.publish({ jobs: [...this.changedJobs], batches: [...this.changedBatches] }).catch(() => undefined);
  }
}
