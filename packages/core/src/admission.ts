import type { Tier, TierLimits } from "@simbatch/config";
import { newBatchId, newJobId, periodOf, secondsToNextPeriod } from "@simbatch/contracts";
import { inRawTransaction, inTransaction, Prisma, rawOf, type Batch, type Raw, type SimulationJob } from "@simbatch/db";
import { AppError } from "@simbatch/errors";
import { usd, type CoreDeps } from "./deps.ts";
import type { ResolvedSimulation } from "./resolve.ts";
import type { QuotaState } from "./usage-queries.ts";
import { claimIdempotencyKey, rememberResponse, type IdempotentRequest, type StoredResponse } from "./idempotency.ts";

/**
 * A create carrying an Idempotency-Key: `respond` renders the response of the
 * admitted work, stored under the key in the admitting transaction.
 */
export interface Idempotency<T> {
  request: IdempotentRequest;
  respond: (created: T) => StoredResponse;
}

/** What an idempotent create returns: the work it admitted, or the stored response of the key's first request. */
export type Admitted<T> = { created: T; replay: null } | { created: null; replay: StoredResponse };

// The admission decisions are pure (limits and counters in, the refusal or null
// out); admitSingle and admitBatch load the counters under the user's lock and throw.

/** The tier's concurrency limit (single simulations pending or running). */
export function concurrencyRefusal(q: QuotaState, l: TierLimits): AppError | null {
  if (l.concurrency < 0) return null;
  const active = q.activeSingleJobs;
  if (active < l.concurrency) return null;
  return new AppError("ConcurrencyLimitExceeded", {
    message: `Concurrency limit reached: ${active} of ${l.concurrency} simulations are pending or running`,
    fields: { active_jobs: active, concurrency_limit: l.concurrency },
    retryAfter: 5,
  });
}

/** The monthly simulation quota: `requested` more must fit. */
export function simulationQuotaRefusal(q: QuotaState, l: TierLimits, requested: number, now: Date): AppError | null {
  if (l.simulations < 0) return null;
  const used = q.simulationsUsed;
  if (used + requested <= l.simulations) return null;
  return new AppError("SimulationQuotaExceeded", {
    message: `Simulation quota exceeded: ${used} of ${l.simulations} used this period, ${requested} requested`,
    fields: { simulations_used: used, simulations_limit: l.simulations },
    retryAfter: secondsToNextPeriod(now),
  });
}

/** The monthly cost quota: spent, plus reserved by unfinished work, plus this request's estimate must fit. */
export function costQuotaRefusal(q: QuotaState, l: TierLimits, estimateMicros: number, now: Date): AppError | null {
  if (l.costMicros < 0) return null;
  const used = q.costUsedMicros;
  const reserved = q.reservedMicros;
  if (used + reserved + BigInt(estimateMicros) <= BigInt(l.costMicros)) return null;
  return new AppError("CostQuotaExceeded", {
    message: `Cost quota exceeded: ${usd(used)} USD used and ${usd(reserved)} USD reserved of ${usd(l.costMicros)} USD; this request needs ${usd(estimateMicros)} USD`,
    fields: { cost_used_usd: usd(used), cost_limit_usd: usd(l.costMicros) },
    retryAfter: secondsToNextPeriod(now),
  });
}

/** POST /simulations, in order: concurrency → simulation quota → cost quota. */
export function singleRefusal(q: QuotaState, l: TierLimits, estimateMicros: number, now: Date): AppError | null {
  return concurrencyRefusal(q, l) ?? simulationQuotaRefusal(q, l, 1, now) ?? costQuotaRefusal(q, l, estimateMicros, now);
}

/**
 * What a batch reserves of the cost quota: its whole estimate, capped or not (contract:
 * "the new estimate"), as its unfinished jobs' estimates reserve it once admitted.
 */
export const batchReserveMicros = (estimatesMicros: number[]): number => estimatesMicros.reduce((a, e) => a + e, 0);

/**
 * POST /simulations/batch, in order: batch size → simulation quota → budget (the
 * cap must cover at least the first simulation) → cost quota of the reserve.
 */
export function batchRefusal(tier: Tier, q: QuotaState, l: TierLimits, estimatesMicros: number[], budgetCapMicros: number | null, now: Date): AppError | null {
  if (estimatesMicros.length > l.maxBatchSize) {
    return new AppError("BatchTooLarge", {
      message: `Batch of ${estimatesMicros.length} simulations exceeds the ${tier} tier's maximum of ${l.maxBatchSize}`,
      fields: { tier, max_batch_size: l.maxBatchSize },
    });
  }
  const sims = simulationQuotaRefusal(q, l, estimatesMicros.length, now);
  if (sims) return sims;
  const first = estimatesMicros[0]!;
  if (budgetCapMicros !== null && first > budgetCapMicros) {
    const total = estimatesMicros.reduce((a, e) => a + e, 0);
    return new AppError("BudgetTooLow", {
      message: `Budget cap of ${usd(budgetCapMicros)} USD is below the first simulation's estimate of ${usd(first)} USD (the batch's estimate, estimated_cost_usd, is ${usd(total)} USD)`,
      fields: { estimated_cost_usd: usd(total) },
    });
  }
  return costQuotaRefusal(q, l, batchReserveMicros(estimatesMicros), now);
}

function jobRow(
  sim: ResolvedSimulation,
  ownerId: string,
  period: string,
  requestId: string | null,
  extra: { batchId: string | null; batchIndex: number | null; priority: number },
) {
  return {
    id: newJobId(),
    ownerId,
    batchId: extra.batchId,
    batchIndex: extra.batchIndex,
    priority: extra.priority,
    templateId: sim.templateId,
    description: sim.description,
    entityCount: sim.entityCount,
    timepointCount: sim.timepointCount,
    temporalMode: sim.temporalMode,
    config: sim.config as object,
    generateSummaries: sim.generateSummaries,
    exportFormats: sim.exportFormats,
    metadata: (sim.metadata ?? undefined) as object | undefined,
    estimatedCostMicros: BigInt(sim.estimatedCostMicros),
    admittedPeriod: period,
    requestId,
  };
}

/** POST /simulations: concurrency → simulation quota → cost quota, then one insert. */
export async function admitSingle(
  deps: CoreDeps,
  userId: string,
  sim: ResolvedSimulation,
  requestId: string | null,
  tierHint?: Tier,
  idem?: Idempotency<SimulationJob>,
): Promise<Admitted<SimulationJob>> {
  return inTransaction(deps.db, async (tx) => {
    const now = deps.clock.now();
    if (idem) {
      const replay = await claimIdempotencyKey(tx, idem.request, now);
      if (replay) return { created: null, replay };
    }
    const { limits: l, quota: q } = await lockUserWithQuota(tx, userId, periodOf(now), deps.limits, "single", tierHint);
    const refusal = singleRefusal(q, l, sim.estimatedCostMicros, now);
    if (refusal) throw refusal;
    const job = await tx.simulationJob.create({ data: jobRow(sim, userId, periodOf(now), requestId, { batchId: null, batchIndex: null, priority: 50 }) });
    if (idem) await rememberResponse(tx, idem.request, idem.respond(job), now);
    return { created: job, replay: null };
  });
}

export interface BatchOptions {
  parallelJobs: number;
  failFast: boolean;
  budgetCapMicros: number | null;
  priority: number;
  metadata: Record<string, unknown> | null;
  /** Where the batch's end is announced (already checked by the caller). */
  webhookUrl?: string | null;
}

/** What a dry run reports (contract: Dry run); remaining counts are -1 when unlimited. */
export interface DryRunReport {
  totalJobs: number;
  estimatedMicros: number;
  jobEstimatesMicros: number[];
  simulationsRemaining: number;
  costRemainingMicros: bigint | -1;
}

/**
 * POST /simulations/batch?dry_run=true: the admission checks of a real create
 * against the same counters, in a transaction that writes nothing.
 */
export async function dryRunBatch(deps: CoreDeps, userId: string, sims: ResolvedSimulation[], opts: BatchOptions, tierHint?: Tier): Promise<DryRunReport> {
  const estimates = sims.map((s) => s.estimatedCostMicros);
  return inRawTransaction(deps.db, async (tx) => {
    const now = deps.clock.now();
    const { tier, limits: l, quota: q } = await lockUserWithQuota(tx, userId, periodOf(now), deps.limits, "batch", tierHint);
    const refusal = batchRefusal(tier, q, l, estimates, opts.budgetCapMicros, now);
    if (refusal) throw refusal;
    const reserve = BigInt(batchReserveMicros(estimates));
    return {
      totalJobs: sims.length,
      estimatedMicros: estimates.reduce((a, e) => a + e, 0),
      jobEstimatesMicros: estimates,
      simulationsRemaining: l.simulations < 0 ? -1 : l.simulations - q.simulationsUsed - sims.length,
      costRemainingMicros: l.costMicros < 0 ? -1 : BigInt(l.costMicros) - q.costUsedMicros - q.reservedMicros - reserve,
    };
  });
}

/**
 * POST /simulations/batch: batch size → simulation quota → budget → cost quota;
 * the batch, its jobs and the reservation are written in one transaction (lock
 * the user, read the counters, one insert of the batch and all its jobs). The user row lock serializes a user's admissions, so
 * limits cannot be overshot; the counters it reads are kept by triggers in the
 * same transactions that change jobs and the ledger.
 *
 * A tier whose limits count nothing (enterprise by default) needs no counters:
 * without an Idempotency-Key its admission is one statement that share-locks the
 * user row, checks the tier is still the one authentication saw and inserts
 * (three round trips fewer). Should the tier have changed, it inserts nothing
 * and the transaction below decides.
 */
export async function admitBatch(
  deps: CoreDeps,
  userId: string,
  sims: ResolvedSimulation[],
  opts: BatchOptions,
  requestId: string | null,
  /** The tier the caller saw (authentication read it): saves a read when it is still right. */
  tierHint?: Tier,
  idem?: Idempotency<Batch>,
): Promise<Admitted<Batch>> {
  const estimates = sims.map((s) => s.estimatedCostMicros);
  const nb: NewBatch = { batchId: newBatchId(), jobIds: sims.map(() => newJobId()), userId, sims, opts, requestId };
  const insert = (gate: Prisma.Sql, period: string) => batchInsert(nb, period, gate);
  if (!idem && tierHint && !countsMatter(deps.limits[tierHint], "batch")) {
    const now = deps.clock.now();
    const refusal = batchRefusal(tierHint, UNCOUNTED, deps.limits[tierHint], estimates, opts.budgetCapMicros, now);
    if (refusal) throw refusal;
    const [row] = await rawOf(deps.db).$queryRaw<{ created_at: Date | null }[]>`
      WITH u AS (SELECT tier::text AS tier FROM users WHERE id = ${userId} FOR SHARE),
      gate AS (SELECT 1 FROM u WHERE u.tier = ${tierHint}),
      ${insert(Prisma.sql`gate`, periodOf(now))}`;
    if (row?.created_at) return { created: admittedRow(nb, row.created_at), replay: null };
  }
  return inRawTransaction(deps.db, async (tx) => {
    const now = deps.clock.now();
    if (idem) {
      const replay = await claimIdempotencyKey(tx, idem.request, now);
      if (replay) return { created: null, replay };
    }
    const { tier, limits: l, quota: q } = await lockUserWithQuota(tx, userId, periodOf(now), deps.limits, "batch", tierHint);
    const refusal = batchRefusal(tier, q, l, estimates, opts.budgetCapMicros, now);
    if (refusal) throw refusal;
    const [created] = await tx.$queryRaw<{ created_at: Date }[]>`WITH ${insert(Prisma.sql`(SELECT 1) AS gate`, periodOf(now))}`;
    const batch = admittedRow(nb, created!.created_at);
    if (idem) await rememberResponse(tx, idem.request, idem.respond(batch), now);
    return { created: batch, replay: null };
  });
}

/** A batch about to be admitted: its ids are made before the statement that writes it. */
interface NewBatch {
  batchId: string;
  jobIds: string[];
  userId: string;
  sims: ResolvedSimulation[];
  opts: BatchOptions;
  requestId: string | null;
}

/**
 * The tail of a WITH that inserts the batch and all its jobs (one row per job
 * from a jsonb array) when `gate` yields a row, and selects the batch's
 * `created_at` (null when nothing was inserted).
 */
function batchInsert({ batchId, jobIds, userId, sims, opts, requestId }: NewBatch, period: string, gate: Prisma.Sql): Prisma.Sql {
  const total = sims.reduce((a, s) => a + s.estimatedCostMicros, 0);
  const jobs = JSON.stringify(
    sims.map((s, i) => ({
      id: jobIds[i],
      batch_index: i,
      template_id: s.templateId,
      description: s.description,
      entity_count: s.entityCount,
      timepoint_count: s.timepointCount,
      temporal_mode: s.temporalMode,
      config: s.config,
      generate_summaries: s.generateSummaries,
      export_formats: s.exportFormats,
      metadata: s.metadata ?? null,
      estimated_cost_micros: s.estimatedCostMicros,
    })),
  );
  const metadata = opts.metadata === null ? null : JSON.stringify(opts.metadata);
  const cap = opts.budgetCapMicros === null ? null : BigInt(opts.budgetCapMicros);
  return Prisma.sql`b AS (
      INSERT INTO batches (id, owner_id, priority, fail_fast, parallel_jobs, budget_cap_micros, estimated_cost_micros, total_jobs, metadata, request_id,
        job_ids, webhook_url)
      SELECT ${batchId}, ${userId}, ${opts.priority}, ${opts.failFast}, ${opts.parallelJobs}, ${cap}::bigint, ${BigInt(total)}::bigint,
        ${sims.length}, ${metadata}::jsonb, ${requestId}, ${jobIds}::text[], ${opts.webhookUrl ?? null}
      FROM ${gate}
      RETURNING id, created_at
    ), j AS (
      INSERT INTO simulation_jobs (id, owner_id, batch_id, batch_index, priority, template_id, description, entity_count, timepoint_count,
        temporal_mode, config, generate_summaries, export_formats, metadata, estimated_cost_micros, admitted_period, request_id, created_at)
      SELECT r.id, ${userId}, b.id, r.batch_index, ${opts.priority}, r.template_id, r.description, r.entity_count, r.timepoint_count,
        r.temporal_mode::"TemporalMode", r.config, r.generate_summaries, r.export_formats, r.metadata, r.estimated_cost_micros, ${period},
        ${requestId}, b.created_at
      FROM b, jsonb_to_recordset(${jobs}::jsonb) AS r(id text, batch_index int, template_id text, description text, entity_count int,
        timepoint_count int, temporal_mode text, config jsonb, generate_summaries boolean, export_formats text[], metadata jsonb,
        estimated_cost_micros bigint)
    )
    SELECT (SELECT created_at FROM b) AS created_at`;
}

/** The admitted batch as written (the 202 body is built from it, not read back). */
function admittedRow({ batchId, jobIds, userId, sims, opts, requestId }: NewBatch, createdAt: Date): Batch {
  return {
    id: batchId,
    ownerId: userId,
    status: "PENDING",
    priority: opts.priority,
    failFast: opts.failFast,
    parallelJobs: opts.parallelJobs,
    budgetCapMicros: opts.budgetCapMicros === null ? null : BigInt(opts.budgetCapMicros),
    estimatedCostMicros: BigInt(sims.reduce((a, s) => a + s.estimatedCostMicros, 0)),
    totalJobs: sims.length,
    stopReason: null,
    errorMessage: null,
    cancelReason: null,
    metadata: (opts.metadata ?? null) as Batch["metadata"],
    requestId,
    createdAt,
    startedAt: null,
    completedAt: null,
    jobIds,
    waitingJobs: sims.length,
    activeJobs: 0,
    completedJobs: 0,
    failedJobs: 0,
    cancelledJobs: 0,
    chargedMicros: 0n,
    chargedTokens: 0n,
    activeEstimateMicros: 0n,
    paused: false,
    pausedAt: null,
    webhookUrl: opts.webhookUrl ?? null,
    webhookEnqueuedAt: null,
  };
}

/** Whether a request of this kind is bounded by anything the user's usage counts. */
export const countsMatter = (l: TierLimits, kind: "batch" | "single") => l.simulations >= 0 || l.costMicros >= 0 || (kind === "single" && l.concurrency >= 0);

const UNCOUNTED: QuotaState = { simulationsUsed: 0, costUsedMicros: 0n, reservedMicros: 0n, activeSingleJobs: 0 };

/**
 * Locks the user row and reads the quota counters. A tier whose limits count
 * usage takes the row exclusively, so one user's admissions run one at a time
 * and cannot overshoot; the counters are read in a second statement (one that
 * waited for the lock would still read the snapshot it took before waiting).
 * A tier with nothing counted (unlimited simulations and cost) only shares the
 * lock, so its admissions run side by side, and reads nothing more; sharing
 * still orders them against a tier change, which takes the row exclusively.
 */
async function lockUserWithQuota(tx: Raw, userId: string, period: string, limits: Record<Tier, TierLimits>, kind: "batch" | "single", tierHint?: Tier) {
  let tier = tierHint;
  if (!tier) {
    const [seen] = await tx.$queryRaw<{ tier: Tier }[]>`SELECT tier::text AS tier FROM users WHERE id = ${userId}`;
    if (!seen) throw new AppError("Unauthorized", { message: "Unknown user" });
    tier = seen.tier;
  }
  const exclusive = countsMatter(limits[tier], kind);
  const [locked] = exclusive
    ? await tx.$queryRaw<{ tier: Tier }[]>`SELECT tier::text AS tier FROM users WHERE id = ${userId} FOR UPDATE`
    : await tx.$queryRaw<{ tier: Tier }[]>`SELECT tier::text AS tier FROM users WHERE id = ${userId} FOR SHARE`;
  if (!locked) throw new AppError("Unauthorized", { message: "Unknown user" });
  const l = limits[locked.tier];
  if (!countsMatter(l, kind)) return { tier: locked.tier, limits: l, quota: UNCOUNTED };
  // The tier changed to a counted one since it was read: take the row exclusively
  // (a deadlock with another such upgrade is retried by inTransaction).
  if (!exclusive) await tx.$queryRaw`SELECT 1 FROM users WHERE id = ${userId} FOR UPDATE`;
  const rows = await tx.$queryRaw<{ tier: Tier; sims: bigint | null; cost: bigint | null; reserved: bigint | null; singles: number | null }[]>`
    SELECT u.tier::text AS tier, p.simulations AS sims, p.cost_micros AS cost, c.unfinished_estimate_micros AS reserved, c.unfinished_single_jobs AS singles
    FROM users u LEFT JOIN user_totals c ON c.user_id = u.id LEFT JOIN usage_totals p ON p.user_id = u.id AND p.period = ${period}
    WHERE u.id = ${userId}`;
  const row = rows[0]!;
  const quota: QuotaState = {
    simulationsUsed: Number(row.sims ?? 0),
    costUsedMicros: BigInt(row.cost ?? 0),
    reservedMicros: BigInt(row.reserved ?? 0),
    activeSingleJobs: row.singles ?? 0,
  };
  return { tier: row.tier, limits: limits[row.tier], quota };
}
