import type { Tier, TierLimits } from "@simbatch/config";
import { newBatchId, newJobId, periodOf, secondsToNextPeriod } from "@simbatch/contracts";
import { inTransaction, type Batch, type SimulationJob, type Tx } from "@simbatch/db";
import { AppError } from "@simbatch/errors";
import { usd, type CoreDeps } from "./deps.ts";
import type { ResolvedSimulation } from "./resolve.ts";
import { activeSingleJobs, costUsedMicros, simulationsUsed, unfinishedEstimateMicros } from "./usage-queries.ts";

/** Locks the user row: admissions of one user are serialized, so limits cannot be overshot. */
async function lockUser(tx: Tx, userId: string, limits: Record<Tier, TierLimits>): Promise<{ tier: Tier; limits: TierLimits }> {
  const rows = await tx.$queryRaw<{ tier: Tier }[]>`SELECT tier::text AS tier FROM users WHERE id = ${userId} FOR UPDATE`;
  const tier = rows[0]?.tier;
  if (!tier) throw new AppError("Unauthorized", { message: "Unknown user" });
  return { tier, limits: limits[tier] };
}

async function checkSimulationQuota(tx: Tx, deps: CoreDeps, userId: string, l: TierLimits, requested: number, now: Date) {
  if (l.simulations < 0) return;
  const used = await simulationsUsed(tx, userId, periodOf(now));
  if (used + requested > l.simulations) {
    throw new AppError("SimulationQuotaExceeded", {
      message: `Simulation quota exceeded: ${used} of ${l.simulations} used this period, ${requested} requested`,
      fields: { simulations_used: used, simulations_limit: l.simulations },
      retryAfter: secondsToNextPeriod(now),
    });
  }
}

async function checkCostQuota(tx: Tx, userId: string, l: TierLimits, estimateMicros: number, now: Date) {
  if (l.costMicros < 0) return;
  const used = await costUsedMicros(tx, userId, now);
  const reserved = await unfinishedEstimateMicros(tx, userId);
  if (used + reserved + BigInt(estimateMicros) > BigInt(l.costMicros)) {
    throw new AppError("CostQuotaExceeded", {
      message: `Cost quota exceeded: ${usd(used)} USD used and ${usd(reserved)} USD reserved of ${usd(l.costMicros)} USD; this request needs ${usd(estimateMicros)} USD`,
      fields: { cost_used_usd: usd(used), cost_limit_usd: usd(l.costMicros) },
      retryAfter: secondsToNextPeriod(now),
    });
  }
}

function jobRow(sim: ResolvedSimulation, ownerId: string, period: string, requestId: string | null, extra: { batchId: string | null; batchIndex: number | null; priority: number }) {
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
export async function admitSingle(deps: CoreDeps, userId: string, sim: ResolvedSimulation, requestId: string | null): Promise<SimulationJob> {
  return inTransaction(deps.db, async (tx) => {
    const now = deps.clock.now();
    const { limits: l } = await lockUser(tx, userId, deps.limits);
    if (l.concurrency >= 0) {
      const active = await activeSingleJobs(tx, userId);
      if (active >= l.concurrency) {
        throw new AppError("ConcurrencyLimitExceeded", {
          message: `Concurrency limit reached: ${active} of ${l.concurrency} simulations are pending or running`,
          fields: { active_jobs: active, concurrency_limit: l.concurrency },
          retryAfter: 5,
        });
      }
    }
    await checkSimulationQuota(tx, deps, userId, l, 1, now);
    await checkCostQuota(tx, userId, l, sim.estimatedCostMicros, now);
    return tx.simulationJob.create({ data: jobRow(sim, userId, periodOf(now), requestId, { batchId: null, batchIndex: null, priority: 50 }) });
  });
}

export interface BatchOptions {
  parallelJobs: number;
  failFast: boolean;
  budgetCapMicros: number | null;
  priority: number;
  metadata: Record<string, unknown> | null;
}

/**
 * POST /simulations/batch: batch size → simulation quota → budget → cost quota;
 * the batch, its jobs and the reservation are written in one transaction.
 */
export async function admitBatch(
  deps: CoreDeps,
  userId: string,
  sims: ResolvedSimulation[],
  opts: BatchOptions,
  requestId: string | null,
): Promise<{ batch: Batch; jobs: SimulationJob[] }> {
  return inTransaction(deps.db, async (tx) => {
    const now = deps.clock.now();
    const { tier, limits: l } = await lockUser(tx, userId, deps.limits);
    if (sims.length > l.maxBatchSize) {
      throw new AppError("BatchTooLarge", {
        message: `Batch of ${sims.length} simulations exceeds the ${tier} tier's maximum of ${l.maxBatchSize}`,
        fields: { tier, max_batch_size: l.maxBatchSize },
      });
    }
    await checkSimulationQuota(tx, deps, userId, l, sims.length, now);
    const first = sims[0]!.estimatedCostMicros;
    if (opts.budgetCapMicros !== null && first > opts.budgetCapMicros) {
      throw new AppError("BudgetTooLow", {
        message: `Budget cap of ${usd(opts.budgetCapMicros)} USD is below the first simulation's estimate of ${usd(first)} USD`,
        fields: { estimated_cost_usd: usd(sims.reduce((a, s) => a + s.estimatedCostMicros, 0)) },
      });
    }
    // Reserve what the batch can spend: its estimate, bounded by its cap.
    const total = sims.reduce((a, s) => a + s.estimatedCostMicros, 0);
    const reserve = opts.budgetCapMicros === null ? total : Math.min(total, opts.budgetCapMicros);
    await checkCostQuota(tx, userId, l, reserve, now);
    const batch = await tx.batch.create({
      data: {
        id: newBatchId(),
        ownerId: userId,
        priority: opts.priority,
        failFast: opts.failFast,
        parallelJobs: opts.parallelJobs,
        budgetCapMicros: opts.budgetCapMicros === null ? null : BigInt(opts.budgetCapMicros),
        estimatedCostMicros: BigInt(total),
        totalJobs: sims.length,
        metadata: (opts.metadata ?? undefined) as object | undefined,
        requestId,
      },
    });
    const period = periodOf(now);
    const rows = sims.map((s, i) => jobRow(s, userId, period, requestId, { batchId: batch.id, batchIndex: i, priority: opts.priority }));
    await tx.simulationJob.createMany({ data: rows });
    const jobs = await tx.simulationJob.findMany({ where: { batchId: batch.id }, orderBy: { batchIndex: "asc" } });
    return { batch, jobs };
  });
}
