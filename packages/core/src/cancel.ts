import { inTransaction, type Batch, type SimulationJob } from "@simbatch/db";
import { invalidState } from "@simbatch/errors";
import type { CoreDeps } from "./deps.ts";
import { evaluateBatches, stopBatchJobs } from "./batch-state.ts";
import { requestDispatch } from "./dispatcher.ts";
import { SideEffects } from "./side-effects.ts";
import { loadOwnedBatch, loadOwnedJob } from "./queries.ts";

async function afterCommit(deps: CoreDeps, effects: SideEffects): Promise<void> {
  await effects.run(deps);
  if (effects.wantDispatch) await requestDispatch(deps).catch((err) => deps.logger.warn("dispatch after cancel failed", { error: String(err) }));
}

/**
 * POST /simulations/{id}/cancel. A pending job is CANCELLED at once (nothing
 * charged); a running one gets a stop request and reads CANCELLED once its
 * worker stops at the next step boundary and reports what it spent.
 */
export async function cancelJob(deps: CoreDeps, userId: string, jobId: string, reason: string | null): Promise<SimulationJob> {
  await loadOwnedJob(deps.db, userId, jobId);
  const effects = new SideEffects();
  const job = await inTransaction(deps.db, async (tx) => {
    const [row] = await tx.$queryRaw<{ status: string; batch_id: string | null; released_at: Date | null }[]>`
      SELECT status::text, batch_id, released_at FROM simulation_jobs WHERE id = ${jobId} FOR UPDATE`;
    if (!row || (row.status !== "PENDING" && row.status !== "RUNNING")) {
      throw invalidState(`Job ${jobId} is ${row?.status ?? "gone"}; only PENDING or RUNNING jobs can be cancelled`);
    }
    const why = reason ?? "cancelled by user";
    effects.jobChanged(jobId, row.batch_id);
    if (row.status === "PENDING") {
      await tx.$executeRaw`UPDATE simulation_jobs SET status = 'CANCELLED', completed_at = now(), cancel_reason = ${why} WHERE id = ${jobId}`;
      if (row.released_at) effects.unqueueJobs.add(jobId);
      effects.wantDispatch = true;
    } else {
      await tx.$executeRaw`UPDATE simulation_jobs SET cancel_requested = true, cancel_reason = ${why} WHERE id = ${jobId}`;
      effects.stopJobs.add(jobId);
    }
    if (row.batch_id) await evaluateBatches(deps, tx, [row.batch_id], effects);
    return tx.simulationJob.findUniqueOrThrow({ where: { id: jobId } });
  });
  await afterCommit(deps, effects);
  return job;
}

/**
 * POST /simulations/batch/{id}/cancel. The batch reads CANCELLED from this
 * response on; jobs not started are cancelled now; running jobs are interrupted
 * (cancel_running) or left to finish and be accounted.
 */
export async function cancelBatch(deps: CoreDeps, userId: string, batchId: string, reason: string | null, cancelRunning: boolean): Promise<Batch> {
  await loadOwnedBatch(deps.db, userId, batchId);
  const effects = new SideEffects();
  const batch = await inTransaction(deps.db, async (tx) => {
    const [row] = await tx.$queryRaw<{ status: string }[]>`SELECT status::text FROM batches WHERE id = ${batchId} FOR UPDATE`;
    if (!row || (row.status !== "PENDING" && row.status !== "RUNNING")) {
      throw invalidState(`Batch ${batchId} is ${row?.status ?? "gone"}; only PENDING or RUNNING batches can be cancelled`);
    }
    await tx.$executeRaw`
      UPDATE batches SET status = 'CANCELLED', stop_reason = 'CANCELLED_BY_USER', cancel_reason = ${reason}
      WHERE id = ${batchId}`;
    effects.changedBatches.add(batchId);
    await stopBatchJobs(tx, batchId, reason ?? "cancelled with the batch", cancelRunning, effects);
    await evaluateBatches(deps, tx, [batchId], effects);
    return tx.batch.findUniqueOrThrow({ where: { id: batchId } });
  });
  await afterCommit(deps, effects);
  return batch;
}
