import { periodOf, type JobEvent } from "@simbatch/contracts";
import { inTransaction, type Tx } from "@simbatch/db";
import type { CoreDeps } from "./deps.ts";
import { evaluateBatches } from "./batch-state.ts";
import { SideEffects } from "./side-effects.ts";

const TERMINAL = { completed: "COMPLETED", failed: "FAILED", cancelled: "CANCELLED" } as const;
type TerminalEvent = Extract<JobEvent, { type: keyof typeof TERMINAL }>;

/** Keeps, per job and attempt, the last progress event and every other event. */
function coalesce(events: JobEvent[]): JobEvent[] {
  const lastProgress = new Map<string, JobEvent>();
  const rest: JobEvent[] = [];
  for (const e of events) {
    if (e.type === "progress") lastProgress.set(`${e.jobId}:${e.attempt}`, e);
    else rest.push(e);
  }
  return [...lastProgress.values(), ...rest];
}

async function applyProgress(tx: Tx, e: Extract<JobEvent, { type: "progress" }>): Promise<string | null> {
  const rows = await tx.$queryRaw<{ batch_id: string | null }[]>`
    UPDATE simulation_jobs SET progress_percent = GREATEST(progress_percent, ${e.progress}), current_step = ${e.step},
      cost_micros = GREATEST(cost_micros, ${BigInt(e.costMicros)}), tokens_used = GREATEST(tokens_used, ${BigInt(e.tokens)})
    WHERE id = ${e.jobId} AND status = 'RUNNING' AND attempts = ${e.attempt}
    RETURNING batch_id`;
  return rows[0]?.batch_id ?? null;
}

/**
 * Ends the attempt (guarded on RUNNING and the same attempt, so a replayed or
 * stale event changes nothing) and charges the ledger for it, once.
 */
async function applyTerminal(tx: Tx, e: TerminalEvent): Promise<{ batchId: string | null } | null> {
  const status = TERMINAL[e.type];
  const error = e.type === "failed" ? e.errorMessage : null;
  const rows = await tx.$queryRaw<{ owner_id: string; batch_id: string | null }[]>`
    UPDATE simulation_jobs SET status = ${status}::"JobStatus", completed_at = ${new Date(e.at)},
      cost_micros = ${BigInt(e.costMicros)}, tokens_used = ${BigInt(e.tokens)},
      progress_percent = CASE WHEN ${status} = 'COMPLETED' THEN 100 ELSE progress_percent END,
      current_step = CASE WHEN ${status} = 'COMPLETED' THEN 'completed' ELSE current_step END,
      error_message = COALESCE(${error}, error_message),
      cancel_reason = CASE WHEN ${status} = 'CANCELLED' THEN COALESCE(cancel_reason, 'interrupted') ELSE cancel_reason END
    WHERE id = ${e.jobId} AND status = 'RUNNING' AND attempts = ${e.attempt}
    RETURNING owner_id, batch_id`;
  const row = rows[0];
  if (!row) return null;
  await tx.$executeRaw`
    INSERT INTO ledger_entries (user_id, period, kind, job_id, batch_id, attempt, cost_micros, tokens)
    VALUES (${row.owner_id}, ${periodOf(new Date(e.at))}, 'CHARGE', ${e.jobId}, ${row.batch_id}, ${e.attempt}, ${BigInt(e.costMicros)}, ${BigInt(e.tokens)})
    ON CONFLICT (job_id, attempt) DO NOTHING`;
  return { batchId: row.batch_id };
}

async function batchOf(tx: Tx, jobId: string): Promise<string | null> {
  const rows = await tx.$queryRaw<{ batch_id: string | null }[]>`SELECT batch_id FROM simulation_jobs WHERE id = ${jobId}`;
  return rows[0]?.batch_id ?? null;
}

export interface ApplyResult {
  applied: number;
  /** A job ended or started: capacity changed, so dispatch should run. */
  capacityChanged: boolean;
}

/**
 * Applies a batch of worker events in one transaction: job rows, ledger, then
 * the affected batches' state. Replaying any of them is harmless.
 */
export async function applyEvents(deps: CoreDeps, events: JobEvent[]): Promise<ApplyResult> {
  if (events.length === 0) return { applied: 0, capacityChanged: false };
  const effects = new SideEffects();
  const result = await inTransaction(deps.db, async (tx) => {
    const batches = new Set<string>();
    let applied = 0;
    let capacityChanged = false;
    for (const e of coalesce(events)) {
      if (e.type === "progress") {
        const batchId = await applyProgress(tx, e);
        if (batchId) batches.add(batchId);
        continue;
      }
      if (e.type === "started") {
        capacityChanged = true;
        const batchId = await batchOf(tx, e.jobId);
        if (batchId) batches.add(batchId);
        continue;
      }
      const done = await applyTerminal(tx, e);
      if (!done) continue;
      applied++;
      capacityChanged = true;
      if (done.batchId) batches.add(done.batchId);
    }
    await evaluateBatches(deps, tx, batches, effects);
    return { applied, capacityChanged };
  });
  await effects.run(deps);
  return result;
}
