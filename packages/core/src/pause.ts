import { inTransaction, type Batch } from "@simbatch/db";
import { invalidState } from "@simbatch/errors";
import type { CoreDeps } from "./deps.ts";
import { DISPATCH_LOCK, requestDispatch } from "./dispatcher.ts";
import { loadOwnedBatch } from "./queries.ts";
import { SideEffects } from "./side-effects.ts";

/**
 * POST /simulations/batch/{id}/pause. From the response on no job of the batch
 * starts: dispatch skips paused batches, and jobs already handed to BullMQ but not
 * claimed by a worker go back to waiting in Postgres (their BullMQ jobs are
 * removed, and a worker that took one anyway finds it unreleased and skips it).
 * Running jobs finish and are accounted. The pause takes the dispatch lock, so no
 * pass that read the batch as running can release its jobs after this commits.
 * Pausing a paused batch changes nothing.
 */
export async function pauseBatch(deps: CoreDeps, userId: string, batchId: string): Promise<Batch> {
  await loadOwnedBatch(deps.db, userId, batchId);
  const effects = new SideEffects();
  const batch = await inTransaction(deps.db, async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK})`;
    const [row] = await tx.$queryRaw<{ status: string; paused: boolean }[]>`SELECT status::text, paused FROM batches WHERE id = ${batchId} FOR UPDATE`;
    if (!row || (row.status !== "PENDING" && row.status !== "RUNNING")) {
      throw invalidState(`Batch ${batchId} is ${row?.status ?? "gone"}; only PENDING or RUNNING batches can be paused`);
    }
    if (!row.paused) {
      const unreleased = await tx.$queryRaw<{ id: string }[]>`
        UPDATE simulation_jobs SET released_at = NULL WHERE batch_id = ${batchId} AND status = 'PENDING' AND released_at IS NOT NULL RETURNING id`;
      // paused_at is read after that statement, which waited for any claim of those jobs in flight: every job
      // that started despite the pause started before it (now() is the transaction's start, before the lock's wait).
      await tx.$executeRaw`UPDATE batches SET paused = true, paused_at = clock_timestamp() WHERE id = ${batchId}`;
      for (const r of unreleased) effects.unqueueJobs.add(r.id);
      // Slots the unreleased jobs held are free for other work.
      if (unreleased.length > 0) effects.wantDispatch = true;
      effects.changedBatches.add(batchId);
    }
    return tx.batch.findUniqueOrThrow({ where: { id: batchId } });
  });
  await effects.run(deps);
  if (effects.wantDispatch) await requestDispatch(deps).catch((err) => deps.logger.warn("dispatch after pause failed", { error: String(err) }));
  return batch;
}

/** POST /simulations/batch/{id}/resume: the batch's jobs may start again (a running batch's resume changes nothing). */
export async function resumeBatch(deps: CoreDeps, userId: string, batchId: string): Promise<Batch> {
  await loadOwnedBatch(deps.db, userId, batchId);
  const effects = new SideEffects();
  const batch = await inTransaction(deps.db, async (tx) => {
    const [row] = await tx.$queryRaw<{ status: string; paused: boolean }[]>`SELECT status::text, paused FROM batches WHERE id = ${batchId} FOR UPDATE`;
    if (!row || (row.status !== "PENDING" && row.status !== "RUNNING")) {
      throw invalidState(`Batch ${batchId} is ${row?.status ?? "gone"}; only PENDING or RUNNING batches can be resumed`);
    }
    if (row.paused) {
      await tx.$executeRaw`UPDATE batches SET paused = false, paused_at = NULL WHERE id = ${batchId}`;
      effects.changedBatches.add(batchId);
      effects.wantDispatch = true;
    }
    return tx.batch.findUniqueOrThrow({ where: { id: batchId } });
  });
  await effects.run(deps);
  if (effects.wantDispatch) await requestDispatch(deps).catch((err) => deps.logger.warn("dispatch after resume failed", { error: String(err) }));
  return batch;
}
