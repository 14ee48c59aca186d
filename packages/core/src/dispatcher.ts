import { periodOf } from "@simbatch/contracts";
import { inTransaction, Prisma, type Tx } from "@simbatch/db";
import type { Tier } from "@simbatch/config";
import type { CoreDeps } from "./deps.ts";
import { planDispatch, type Candidate, type PlanInput } from "./dispatch-plan.ts";
import { SideEffects } from "./side-effects.ts";
import { evaluateBatches, stopBatch } from "./batch-state.ts";

/** One lock for every dispatcher in the deployment: two can never over-release. */
const DISPATCH_LOCK = 0x51b_a7c4;

interface CandidateRow {
  id: string;
  owner_id: string;
  batch_id: string | null;
  priority: number;
  estimated_cost_micros: bigint;
  created_at: Date;
  request_id: string | null;
}

interface GroupRow {
  group_key: string;
  parallel_jobs: number;
  budget_cap_micros: bigint | null;
  active: number;
  active_estimate: bigint;
  charged: bigint;
}

async function loadInput(tx: Tx, deps: CoreDeps, free: number): Promise<PlanInput> {
  // The first `free` waiting jobs of each batch (request order) and every waiting single job, up to `free`.
  const candidates = await tx.$queryRaw<CandidateRow[]>`
    SELECT id, owner_id, batch_id, priority, estimated_cost_micros, created_at, request_id FROM (
      SELECT j.*, row_number() OVER (PARTITION BY COALESCE(j.batch_id, j.owner_id) ORDER BY j.batch_index NULLS LAST, j.created_at, j.id) AS rn
      FROM simulation_jobs j LEFT JOIN batches b ON b.id = j.batch_id
      WHERE j.status = 'PENDING' AND j.released_at IS NULL
        AND (j.batch_id IS NULL OR (b.status IN ('PENDING', 'RUNNING') AND b.stop_reason IS NULL))
    ) ranked WHERE rn <= ${free}
    ORDER BY batch_id NULLS FIRST, rn`;
  const batchIds = [...new Set(candidates.flatMap((c) => (c.batch_id ? [c.batch_id] : [])))];
  const ownerIds = [...new Set(candidates.map((c) => c.owner_id))];
  const groupRows = batchIds.length === 0 ? [] : await tx.$queryRaw<GroupRow[]>`
    SELECT b.id AS group_key, b.parallel_jobs, b.budget_cap_micros,
      count(j.id) FILTER (WHERE j.status = 'RUNNING' OR (j.status = 'PENDING' AND j.released_at IS NOT NULL))::int AS active,
      COALESCE(sum(j.estimated_cost_micros) FILTER (WHERE j.status = 'RUNNING' OR (j.status = 'PENDING' AND j.released_at IS NOT NULL)), 0)::bigint AS active_estimate,
      COALESCE(sum(j.cost_micros) FILTER (WHERE j.status IN ('COMPLETED', 'FAILED', 'CANCELLED')), 0)::bigint AS charged
    FROM batches b JOIN simulation_jobs j ON j.batch_id = b.id
    WHERE b.id IN (${Prisma.join(batchIds)}) GROUP BY b.id`;
  const period = periodOf(deps.clock.now());
  const userRows = ownerIds.length === 0 ? [] : await tx.$queryRaw<{ id: string; tier: Tier; active: number; last_released: Date | null; cost_used: bigint }[]>`
    SELECT u.id, u.tier::text AS tier,
      (SELECT COALESCE(sum(l.cost_micros), 0) FROM ledger_entries l WHERE l.user_id = u.id AND l.period = ${period})::bigint AS cost_used,
      (SELECT count(*) FROM simulation_jobs j WHERE j.owner_id = u.id
        AND (j.status = 'RUNNING' OR (j.status = 'PENDING' AND j.released_at IS NOT NULL)))::int AS active,
      (SELECT max(j.released_at) FROM simulation_jobs j WHERE j.owner_id = u.id) AS last_released
    FROM users u WHERE u.id IN (${Prisma.join(ownerIds)})`;

  const groups: PlanInput["groups"] = new Map();
  for (const g of groupRows) {
    groups.set(g.group_key, {
      state: {
        slots: g.parallel_jobs - g.active,
        capMicros: g.budget_cap_micros === null ? null : Number(g.budget_cap_micros),
        committedMicros: Number(g.charged) + Number(g.active_estimate),
        active: g.active,
      },
      queue: [],
    });
  }
  for (const row of candidates) {
    const c: Candidate = {
      id: row.id,
      ownerId: row.owner_id,
      batchId: row.batch_id,
      priority: row.priority,
      estimateMicros: Number(row.estimated_cost_micros),
      createdAt: row.created_at.getTime(),
      requestId: row.request_id,
    };
    const key = row.batch_id ?? row.id;
    if (!groups.has(key)) groups.set(key, { state: { slots: 1, capMicros: null, committedMicros: 0, active: 0 }, queue: [] });
    groups.get(key)!.queue.push(c);
  }
  const users: PlanInput["users"] = new Map(
    userRows.map((u) => {
      const costLimit = deps.limits[u.tier]?.costMicros ?? 0;
      return [u.id, {
        active: u.active,
        limit: deps.limits[u.tier]?.concurrency ?? 1,
        lastReleasedAt: u.last_released?.getTime() ?? 0,
        quotaExhausted: costLimit >= 0 && BigInt(u.cost_used) >= BigInt(costLimit),
      }];
    }),
  );
  return { free, groups, users };
}

/**
 * Releases waiting jobs into BullMQ as worker capacity, batch slots, tier
 * concurrency and budgets allow. The decision is made under one advisory lock;
 * the rows are marked released in that transaction and enqueued after commit
 * (an enqueue lost to a crash is repaired by the sweep).
 */
/**
 * Owners at their monthly cost limit start nothing more: their waiting batches stop
 * with QUOTA_EXHAUSTED (running jobs finish) and their waiting single jobs are
 * cancelled. Returns the batches stopped.
 */
async function stopForQuota(tx: Tx, input: PlanInput, groups: string[], effects: SideEffects): Promise<string[]> {
  const batches: string[] = [];
  const singleOwners = new Set<string>();
  for (const key of groups) {
    const head = input.groups.get(key)?.queue[0];
    if (!head) continue;
    if (head.batchId) batches.push(head.batchId);
    else singleOwners.add(head.ownerId);
  }
  for (const batchId of batches) await stopBatch(tx, batchId, "QUOTA_EXHAUSTED", "Monthly cost quota reached", effects);
  for (const ownerId of singleOwners) {
    const cancelled = await tx.$executeRaw`
      UPDATE simulation_jobs SET status = 'CANCELLED', completed_at = now(), cancel_reason = 'quota_exhausted: the monthly cost limit was reached'
      WHERE owner_id = ${ownerId} AND batch_id IS NULL AND status = 'PENDING' AND released_at IS NULL`;
    if (cancelled > 0) effects.wantDispatch = true;
  }
  return batches;
}

async function dispatchOnce(deps: CoreDeps): Promise<number> {
  const capacity = await deps.registry.capacity();
  const effects = new SideEffects();
  const released = await inTransaction(deps.db, async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK})`;
    const [busy] = await tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM simulation_jobs WHERE status = 'RUNNING' OR (status = 'PENDING' AND released_at IS NOT NULL)`;
    const free = Math.max(0, capacity - (busy?.n ?? 0));
    const input = await loadInput(tx, deps, Math.max(free, 1));
    input.free = free;
    const plan = planDispatch(input);
    for (const batchId of plan.budgetExhausted) {
      await stopBatch(tx, batchId, "BUDGET_EXHAUSTED", "The next job does not fit in the remaining budget", effects);
    }
    const quotaBatches = await stopForQuota(tx, input, plan.quotaExhausted, effects);
    const stopped = [...plan.budgetExhausted, ...quotaBatches];
    if (stopped.length > 0) await evaluateBatches(deps, tx, stopped, effects);
    if (plan.release.length === 0) return [];
    // A job cancelled meanwhile (its row lock held by a cancel or a stop rule) is not
    // updated here: enqueue only what this statement really released.
    const marked = await tx.$queryRaw<{ id: string }[]>`
      UPDATE simulation_jobs SET released_at = now()
      WHERE id IN (${Prisma.join(plan.release.map((c) => c.id))}) AND status = 'PENDING' AND released_at IS NULL
      RETURNING id`;
    const ids = new Set(marked.map((r) => r.id));
    return plan.release.filter((c) => ids.has(c.id));
  });
  await effects.run(deps);
  // Enqueued concurrently: each add is independent and idempotent (job id = row id).
  await Promise.all(
    released.map((job) =>
      deps.queue
        .add({ jobId: job.id, priority: job.priority, requestId: job.requestId })
        .then(() => deps.logger.debug("job released", { job_id: job.id, batch_id: job.batchId, request_id: job.requestId }))
        .catch((err: unknown) => deps.logger.warn("enqueue failed; the sweep will repair it", { job_id: job.id, error: String(err) })),
    ),
  );
  return released.length;
}

interface InFlight {
  run: Promise<number>;
  again: boolean;
}
const inFlight = new WeakMap<CoreDeps, InFlight>();

/**
 * Dispatches once per process at a time. A call made while one runs joins it
 * and makes it run once more (its snapshot may predate the caller's commit), so
 * a burst of admissions costs two passes, not one waiting transaction (and pooled
 * connection) each behind the advisory lock.
 */
export function dispatch(deps: CoreDeps): Promise<number> {
  const current = inFlight.get(deps);
  if (current) {
    current.again = true;
    return current.run;
  }
  const state: InFlight = { run: Promise.resolve(0), again: false };
  state.run = (async () => {
    let released = 0;
    try {
      do {
        state.again = false;
        released += await dispatchOnce(deps);
      } while (state.again);
    } finally {
      inFlight.delete(deps);
    }
    return released;
  })();
  inFlight.set(deps, state);
  return state.run;
}
