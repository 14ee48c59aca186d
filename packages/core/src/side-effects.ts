import type { CoreDeps } from "./deps.ts";

/**
 * Redis-side effects decided inside a Postgres transaction and carried out
 * after it commits: stop signals for running jobs, budget-exhausted marks for
 * capped batches, removal of released jobs that were cancelled before a worker
 * took them, and whether a dispatch pass should follow. All are repeatable; the
 * sweep re-issues stop signals and a cancelled job's claim fails on its row, so a
 * crash between commit and here loses nothing.
 */
export class SideEffects {
  readonly stopJobs = new Set<string>();
  readonly unqueueJobs = new Set<string>();
  readonly budgetExhaustedBatches = new Set<string>();
  wantDispatch = false;

  async run(deps: Pick<CoreDeps, "queue" | "signals" | "logger">): Promise<void> {
    try {
      await deps.signals.requestStop([...this.stopJobs]);
      for (const batchId of this.budgetExhaustedBatches) await deps.signals.markBudgetExhausted(batchId);
      await Promise.all([...this.unqueueJobs].map((id) => deps.queue.removeWaiting(id)));
    } catch (err) {
      deps.logger.warn("side effects failed; the sweep will repeat them", { error: String(err) });
    }
  }
}
