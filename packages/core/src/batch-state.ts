import { prepared, Prisma, type Raw, type StopReason } from "@simbatch/db";
import { usd, type CoreDeps } from "./deps.ts";
import type { SideEffects } from "./side-effects.ts";
import { costUsedMicros } from "./usage-queries.ts";

const STOP_CANCEL_REASON: Record<StopReason, string> = {
  FAIL_FAST: "fail_fast: another job of the batch failed",
  BUDGET_EXHAUSTED: "budget_exhausted: the batch reached its budget cap",
  CANCELLED_BY_USER: "cancelled with the batch",
  QUOTA_EXHAUSTED: "quota_exhausted: the monthly cost limit was reached",
};

/**
 * Cancels a batch's jobs that have not started (guarded on PENDING, so a job a
 * worker claimed meanwhile is left to the running path) and, when asked,
 * requests a stop of its running jobs at their next step boundary.
 */
export async function stopBatchJobs(tx: Raw, batchId: string, reason: string, interruptRunning: boolean, effects: SideEffects): Promise<void> {
  const cancelled = await tx.$queryRaw<{ id: string; released_at: Date | null }[]>`
    UPDATE simulation_jobs SET status = 'CANCELLED', completed_at = now(), cancel_reason = COALESCE(cancel_reason, ${reason})
    WHERE batch_id = ${batchId} AND status = 'PENDING'
    RETURNING id, released_at`;
  for (const row of cancelled) {
    if (row.released_at) effects.unqueueJobs.add(row.id);
    effects.jobChanged(row.id, batchId);
  }
  if (cancelled.length > 0) effects.wantDispatch = true;
  if (!interruptRunning) return;
  const running = await tx.$queryRaw<{ id: string }[]>`
    UPDATE simulation_jobs SET cancel_requested = true, cancel_reason = COALESCE(cancel_reason, ${reason})
    WHERE batch_id = ${batchId} AND status = 'RUNNING'
    RETURNING id`;
  for (const row of running) effects.stopJobs.add(row.id);
}

/** Sets a batch's stop reason once and stops its work as the reason wants. */
export async function stopBatch(tx: Raw, batchId: string, reason: StopReason, message: string | null, effects: SideEffects): Promise<void> {
  const updated = await tx.$executeRaw`
    UPDATE batches SET stop_reason = ${reason}::"StopReason", error_message = COALESCE(error_message, ${message})
    WHERE id = ${batchId} AND stop_reason IS NULL AND status IN ('PENDING', 'RUNNING')`;
  if (updated === 0) return;
  if (reason === "BUDGET_EXHAUSTED") effects.budgetExhaustedBatches.add(batchId);
  // The monthly cost limit stops new work only; jobs already running finish.
  await stopBatchJobs(tx, batchId, STOP_CANCEL_REASON[reason], reason !== "QUOTA_EXHAUSTED", effects);
}

interface EvalRow {
  id: string;
  owner_id: string;
  tier: keyof CoreDeps["limits"];
  status: string;
  stop_reason: string | null;
  fail_fast: boolean;
  budget_cap_micros: bigint | null;
  total_jobs: number;
  completed_at: Date | null;
  started_at: Date | null;
  completed_jobs: number;
  failed_jobs: number;
  cancelled_jobs: number;
  charged_micros: bigint;
  active_jobs: number;
}

/** A batch's job counters (kept on its row by the jobs trigger). */
export interface JobStats {
  completed: number;
  failed: number;
  cancelled: number;
  /** When the batch's first job started (null: none has). */
  first_started: Date | null;
  charged: bigint;
}

/**
 * A batch's job counters, from its row (kept by the jobs trigger). Only a batch
 * that has not started yet looks at its jobs, for the first start time.
 */
async function jobStats(tx: Raw, b: EvalRow): Promise<JobStats> {
  const [row] = await tx.$queryRaw<EvalRow[]>`
    SELECT completed_jobs, failed_jobs, cancelled_jobs, charged_micros, started_at FROM batches WHERE id = ${b.id}`;
  let first = row!.started_at;
  if (first === null) {
    const [s] = await tx.$queryRaw<{ first: Date | null }[]>`SELECT min(started_at) AS first FROM simulation_jobs WHERE batch_id = ${b.id}`;
    first = s?.first ?? null;
  }
  return {
    completed: row!.completed_jobs,
    failed: row!.failed_jobs,
    cancelled: row!.cancelled_jobs,
    first_started: first,
    charged: BigInt(row!.charged_micros),
  };
}

/** Spending so far of a batch's running jobs (their partial index: at most parallel_jobs rows). */
async function runningSpend(tx: Raw, batchId: string): Promise<bigint> {
  const [row] = await tx.$queryRaw<{ s: bigint }[]>`
    SELECT COALESCE(sum(cost_micros), 0)::bigint AS s FROM simulation_jobs WHERE batch_id = ${batchId} AND status = 'RUNNING'`;
  return BigInt(row?.s ?? 0);
}

/** The first job of a batch that failed, for the fail-fast message. */
async function firstFailure(tx: Raw, batchId: string): Promise<{ id: string; message: string | null } | null> {
  const [row] = await tx.$queryRaw<{ id: string; error_message: string | null }[]>`
    SELECT id, error_message FROM simulation_jobs WHERE batch_id = ${batchId} AND status = 'FAILED' ORDER BY completed_at, id LIMIT 1`;
  return row ? { id: row.id, message: row.error_message } : null;
}

/** Whether the budget interrupted one of the batch's jobs (the cancel reason its event left). */
async function budgetInterrupted(tx: Raw, batchId: string): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ hit: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM simulation_jobs WHERE batch_id = ${batchId} AND status = 'CANCELLED'
      AND cancel_reason LIKE 'budget_exhausted:%') AS hit`;
  return Boolean(row?.hit);
}

type CostCache = (ownerId: string) => Promise<bigint>;

/** What the stop rules look at, from the batch's locked row. */
export interface StopRuleBatch {
  status: string;
  stopReason: string | null;
  failFast: boolean;
  capMicros: bigint | null;
  totalJobs: number;
  /** The owner's tier's monthly cost limit (-1: unlimited). */
  costLimitMicros: number;
}

/** Facts that cost a read; the rules ask for each only when they get to it (`need`). */
export interface StopRuleFacts {
  /** Whether the budget interrupted one of the batch's jobs (the cancel reason its event left). */
  budgetInterrupted?: boolean;
  /** Spending so far of the batch's running jobs. */
  runningSpendMicros?: bigint;
  /** The owner's cost this period. */
  costUsedMicros?: bigint;
}

export type StopDecision =
  | { kind: "none" }
  | { kind: "need"; fact: keyof StopRuleFacts }
  | { kind: "stop"; reason: "FAIL_FAST" }
  | { kind: "stop"; reason: "BUDGET_EXHAUSTED"; message: string }
  | { kind: "stop"; reason: "QUOTA_EXHAUSTED"; message: string };

const budgetMessage = (spent: bigint, cap: bigint) => `Budget cap reached: spent ${usd(spent)} of ${usd(cap)} USD`;

/** The fail-fast stop's message, naming the batch's first failed job. */
export const failFastMessage = (failed: { id: string; message: string | null } | null): string =>
  `Job ${failed?.id} failed: ${failed?.message ?? "unknown error"}`;

/**
 * Stop rules, in order: fail-fast, budget cap, monthly cost quota. Pure: given
 * the facts loaded so far, either decides or names the next fact it needs.
 */
export function decideStop(b: StopRuleBatch, s: JobStats, facts: StopRuleFacts): StopDecision {
  if (b.stopReason !== null || (b.status !== "PENDING" && b.status !== "RUNNING")) return { kind: "none" };
  if (b.failFast && s.failed > 0) return { kind: "stop", reason: "FAIL_FAST" };
  // Budget and quota stops cut off work still to do; a batch whose every job has
  // ended (its last job meeting the cap exactly) has nothing to stop.
  const cap = b.capMicros === null ? null : BigInt(b.capMicros);
  if (s.completed + s.failed + s.cancelled === b.totalJobs) {
    // Nothing left to stop, but a job the budget interrupted (its worker saw the
    // batch's spending reach the cap) still makes the budget the batch's stop reason.
    if (cap === null || s.cancelled === 0) return { kind: "none" };
    if (facts.budgetInterrupted === undefined) return { kind: "need", fact: "budgetInterrupted" };
    return facts.budgetInterrupted ? { kind: "stop", reason: "BUDGET_EXHAUSTED", message: budgetMessage(s.charged, cap) } : { kind: "none" };
  }
  if (cap !== null) {
    if (facts.runningSpendMicros === undefined) return { kind: "need", fact: "runningSpendMicros" };
    const spent = s.charged + facts.runningSpendMicros;
    if (spent >= cap) return { kind: "stop", reason: "BUDGET_EXHAUSTED", message: budgetMessage(spent, cap) };
  }
  if (b.costLimitMicros < 0) return { kind: "none" };
  if (facts.costUsedMicros === undefined) return { kind: "need", fact: "costUsedMicros" };
  if (facts.costUsedMicros >= BigInt(b.costLimitMicros)) return { kind: "stop", reason: "QUOTA_EXHAUSTED", message: "Monthly cost quota reached" };
  return { kind: "none" };
}

/** The stop rules' decision (decideStop) for a batch, loading the facts they ask for (reads only). */
async function stopDecision(deps: CoreDeps, tx: Raw, b: EvalRow, s: JobStats, costUsed: CostCache): Promise<Exclude<StopDecision, { kind: "need" }>> {
  const batch: StopRuleBatch = {
    status: b.status,
    stopReason: b.stop_reason,
    failFast: b.fail_fast,
    capMicros: b.budget_cap_micros,
    totalJobs: b.total_jobs,
    costLimitMicros: deps.limits[b.tier].costMicros,
  };
  const facts: StopRuleFacts = {};
  for (;;) {
    const d = decideStop(batch, s, facts);
    if (d.kind !== "need") return d;
    if (d.fact === "budgetInterrupted") facts.budgetInterrupted = await budgetInterrupted(tx, b.id);
    else if (d.fact === "runningSpendMicros") facts.runningSpendMicros = await runningSpend(tx, b.id);
    else facts.costUsedMicros = await costUsed(b.owner_id);
  }
}

/** Applies the stop rules (decideStop), loading what they ask for. True when one stopped the batch. */
async function applyStopRules(deps: CoreDeps, tx: Raw, b: EvalRow, s: JobStats, effects: SideEffects, costUsed: CostCache): Promise<boolean> {
  const d = await stopDecision(deps, tx, b, s, costUsed);
  if (d.kind === "none") return false;
  const message = d.reason === "FAIL_FAST" ? failFastMessage(await firstFailure(tx, b.id)) : d.message;
  await stopBatch(tx, b.id, d.reason, message, effects);
  return true;
}

/** A batch's counters as its row holds them. */
const statsOf = (b: EvalRow): JobStats => ({
  completed: b.completed_jobs,
  failed: b.failed_jobs,
  cancelled: b.cancelled_jobs,
  charged: BigInt(b.charged_micros),
  first_started: b.started_at,
});

/** A batch that was never released from, or that started: its counters alone tell its first start (see evaluateBatches). */
const startKnown = (b: EvalRow, s: JobStats): boolean => s.first_started !== null || (b.active_jobs === 0 && s.completed + s.failed + s.cancelled === 0);

/**
 * Whether an evaluation of this batch, as read without a lock, would write
 * anything: a stop rule that fires, or a status or timestamp to move. Reads only.
 */
async function mayTransition(deps: CoreDeps, tx: Raw, b: EvalRow, costUsed: CostCache): Promise<boolean> {
  if (b.status !== "CANCELLED" && b.completed_at !== null) return false; // final
  const s = statsOf(b);
  if (!startKnown(b, s)) return true;
  if ((await stopDecision(deps, tx, b, s, costUsed)).kind !== "none") return true;
  return batchTransition(b, s, false).write;
}

/** Prepared (a reconciler's read of events and a dispatch pass run it by name): its planning took five times its run. */
const readBatches = (tx: Raw, ids: string[], lock: boolean) =>
  tx.$queryRaw<EvalRow[]>(
    prepared(
      lock ? "evaluate_batches_locked" : "evaluate_batches",
      Prisma.sql`
    SELECT b.id, b.owner_id, u.tier::text AS tier, b.status::text, b.stop_reason::text, b.fail_fast, b.budget_cap_micros, b.total_jobs, b.completed_at,
      b.started_at, b.completed_jobs, b.failed_jobs, b.cancelled_jobs, b.charged_micros, b.active_jobs
    FROM batches b JOIN users u ON u.id = b.owner_id
    WHERE b.id = ANY(${ids}::text[]) ORDER BY b.id ${lock ? Prisma.sql`FOR UPDATE OF b` : Prisma.empty}`,
    ),
  );

/** A batch's status from its counters: CANCELLED stays; once every job ended, COMPLETED, FAILED (none completed) or PARTIAL. */
export function derivedStatus(b: { status: string; total_jobs: number }, s: JobStats): string {
  const finished = s.completed + s.failed + s.cancelled;
  if (b.status === "CANCELLED") return "CANCELLED";
  if (finished === b.total_jobs) return s.completed === b.total_jobs ? "COMPLETED" : s.completed === 0 ? "FAILED" : "PARTIAL";
  return b.status === "RUNNING" || s.first_started !== null ? "RUNNING" : "PENDING";
}

export interface BatchTransition {
  status: string;
  /** Every job has ended: completed_at is set. */
  finished: boolean;
  /** COMPLETED: a budget or quota stop that cut nothing off is cleared. */
  noStop: boolean;
  /** Whether the row needs an UPDATE (most evaluations change nothing). */
  write: boolean;
}

/**
 * What an evaluation does to a batch's row, from the row as locked, its counters
 * after the stop rules, and whether a stop rule fired in this evaluation.
 */
export function batchTransition(
  b: { status: string; stop_reason: string | null; total_jobs: number; started_at: Date | null },
  s: JobStats,
  stopped: boolean,
): BatchTransition {
  const status = derivedStatus(b, s);
  const finished = s.completed + s.failed + s.cancelled === b.total_jobs;
  // A budget or quota stop that cut nothing off (the running jobs completed anyway,
  // their last step meeting the cap) leaves a COMPLETED batch: no stop to report.
  const noStop = status === "COMPLETED";
  // Most evaluations change nothing (a job of a running batch ended): those write nothing.
  const clearsStop = noStop && (b.stop_reason === "BUDGET_EXHAUSTED" || b.stop_reason === "QUOTA_EXHAUSTED");
  const unchanged = !stopped && !clearsStop && !finished && status === b.status && (b.started_at !== null || s.first_started === null);
  return { status, finished, noStop, write: !unchanged };
}

/**
 * Re-derives each batch's state from its job rows: applies the stop rules, then
 * moves status forward and sets started_at / completed_at once. Idempotent, so
 * reconcilers and the sweep may run it any number of times.
 */
export async function evaluateBatches(deps: CoreDeps, tx: Raw, batchIds: Iterable<string>, effects: SideEffects): Promise<void> {
  const ids = [...new Set(batchIds)].sort(); // fixed lock order avoids deadlocks between reconcilers
  if (ids.length === 0) return;
  // One read of an owner's cost this period per pass, however many of their batches are evaluated.
  const costCache = (): CostCache => {
    const costs = new Map<string, Promise<bigint>>();
    return (owner) => {
      if (!costs.has(owner)) costs.set(owner, costUsedMicros(tx, owner, deps.clock.now()));
      return costs.get(owner)!;
    };
  };
  // A look without locks first. Most evaluations change nothing (a job of a running batch
  // ended and others are still to come), and a lock on the batch row would make every
  // statement that counts on it meanwhile (workers ending jobs, releases) wait for this
  // transaction. A batch that needs nothing now is left alone: whatever changes it later
  // commits before its event is published, so that event's evaluation sees it. Only the
  // batches that may move are locked and evaluated again from their locked rows.
  const moving: string[] = [];
  const peekCost = costCache();
  for (const b of await readBatches(tx, ids, false)) if (await mayTransition(deps, tx, b, peekCost)) moving.push(b.id);
  if (moving.length === 0) return;
  const rows = await readBatches(tx, moving, true);
  const costUsed = costCache();
  for (const b of rows) {
    if (b.status !== "CANCELLED" && b.completed_at !== null) continue; // final
    let s = statsOf(b);
    // A batch none of whose jobs was ever released or ended cannot have started: skip the look.
    if (!startKnown(b, s)) s = await jobStats(tx, b);
    const stopped = await applyStopRules(deps, tx, b, s, effects, costUsed);
    if (stopped) s = await jobStats(tx, b);
    const { status, finished, noStop, write } = batchTransition(b, s, stopped);
    if (!write) continue;
    const [after] = await tx.$queryRaw<{ stop_reason: string | null; completed_at: Date | null }[]>`
      UPDATE batches SET status = ${status}::"BatchStatus",
        error_message = CASE WHEN ${noStop} AND stop_reason IN ('BUDGET_EXHAUSTED', 'QUOTA_EXHAUSTED') THEN NULL ELSE error_message END,
        stop_reason = CASE WHEN ${noStop} AND stop_reason IN ('BUDGET_EXHAUSTED', 'QUOTA_EXHAUSTED') THEN NULL ELSE stop_reason END,
        started_at = COALESCE(started_at, ${s.first_started}),
        -- Never before its last job's end (that end may come from a worker clock or a later commit than now()).
        completed_at = CASE WHEN ${finished} THEN COALESCE(completed_at,
          GREATEST(clock_timestamp()::timestamp, (SELECT max(j.completed_at) FROM simulation_jobs j WHERE j.batch_id = batches.id))) ELSE completed_at END
      WHERE id = ${b.id}
      RETURNING stop_reason::text, completed_at`;
    effects.changedBatches.add(b.id);
    if (after?.completed_at && !b.completed_at) effects.endedBatches.add(b.id);
    if (status !== b.status || (after?.completed_at && !b.completed_at)) {
      deps.logger.info("batch state", {
        batch_id: b.id,
        from: b.status,
        to: status,
        stop_reason: after?.stop_reason ?? null,
        finished: Boolean(after?.completed_at),
      });
    }
  }
}
