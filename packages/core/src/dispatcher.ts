import { activeJob, waitingById } from "./sql.ts";
import { periodOf } from "@simbatch/contracts";
import { inPreparedTransaction, prepared, Prisma, type Raw } from "@simbatch/db";
import type { Tier } from "@simbatch/config";
import type { CoreDeps } from "./deps.ts";
import { planDispatch, type Candidate, type PlanInput } from "./dispatch-plan.ts";
import { SideEffects } from "./side-effects.ts";
import { evaluateBatches, stopBatch } from "./batch-state.ts";

/** One lock for every dispatcher in the deployment: two can never over-release. */
export const DISPATCH_LOCK = 0x51b_a7c4;

/**
 * Look-ahead: jobs released beyond the free worker slots, per slot of live
 * capacity, so a worker that finishes a job finds its next one already in
 * BullMQ instead of idling for a round trip (event → reconciler → dispatch).
 * parallel_jobs, tier concurrency and budgets count released jobs as running,
 * so they stay exact; strict priority holds through `overtake` (see planDispatch).
 */
export const LOOKAHEAD_PER_SLOT = 2;

/**
 * How far overtaking may grow the jobs released or running, in windows
 * (capacity x (1 + LOOKAHEAD_PER_SLOT)). Strict priority holds as long as fewer
 * higher-priority jobs than that arrive while lower ones sit in the look-ahead.
 */
export const OVERTAKE_WINDOWS = 5;

interface UserRow {
  user_id: string;
  tier: Tier;
  active_jobs: number;
  last_released_at: Date | null;
  cost_used: bigint | null;
}

interface CandidateRow {
  id: string;
  owner_id: string;
  batch_id: string | null;
  priority: number;
  estimated_cost_micros: bigint;
  created_at: Date;
  request_id: string | null;
  parallel_jobs: number | null;
  active_jobs: number | null;
  budget_cap_micros: bigint | null;
  committed_micros: bigint | null;
}

/**
 * How many candidates a pass reads per user: `load` jobs (the pass's free slots, at
 * least one so that each batch's head is seen by the budget rule), and up to
 * `window` of jobs whose priority is above `above` (they may overtake queued
 * ones). A user at its monthly cost limit is read up to `window`, so that one
 * pass stops all its waiting batches.
 */
interface LoadLimits {
  load: number;
  window: number;
  above: number;
}

/**
 * What one pass needs, read in two statements whose cost follows what can be
 * released, not the backlog: the users with waiting work (from the partial
 * indexes on batches with waiting jobs and on waiting single jobs), then for
 * each user that may start something its first batches in priority order until
 * what they can start (free `parallel_jobs` slots, at most their waiting jobs)
 * adds up to its reach (LoadLimits), with each batch's next jobs in request
 * order, and its oldest waiting single jobs. Reading the whole window on every
 * pass parsed ~135 candidate rows for ~25 released in `npm run bench`.
 */
async function loadInput(tx: Raw, deps: CoreDeps, limits: LoadLimits): Promise<Pick<PlanInput, "groups" | "users">> {
  const { load, window, above } = limits;
  const period = periodOf(deps.clock.now());
  const userRows = await tx.$queryRaw<UserRow[]>(
    prepared(
      "dispatch_users",
      Prisma.sql`
    SELECT o.owner_id AS user_id, u.tier::text AS tier, COALESCE(c.active_jobs, 0) AS active_jobs, c.last_released_at, p.cost_micros AS cost_used
    FROM (
      SELECT DISTINCT b.owner_id FROM batches b WHERE b.waiting_jobs > 0 AND b.stop_reason IS NULL AND b.status IN ('PENDING', 'RUNNING') AND NOT b.paused
      UNION
      SELECT DISTINCT j.owner_id FROM simulation_jobs j WHERE j.batch_id IS NULL AND j.status = 'PENDING' AND j.released_at IS NULL
    ) o CROSS JOIN LATERAL (SELECT u.tier FROM users u WHERE u.id = o.owner_id LIMIT 1) u
      LEFT JOIN LATERAL (SELECT c.active_jobs, c.last_released_at FROM user_counters c WHERE c.user_id = o.owner_id LIMIT 1) c ON true
      LEFT JOIN LATERAL (SELECT p.cost_micros FROM usage_periods p WHERE p.user_id = o.owner_id AND p.period = ${period} LIMIT 1) p ON true`,
    ),
  );
  const users: PlanInput["users"] = new Map();
  const eligible: string[] = [];
  const loads: number[] = [];
  for (const u of userRows) {
    const costLimit = deps.limits[u.tier]?.costMicros ?? 0;
    const limit = deps.limits[u.tier]?.concurrency ?? 1;
    const state = {
      active: u.active_jobs,
      limit,
      lastReleasedAt: u.last_released_at?.getTime() ?? 0,
      quotaExhausted: costLimit >= 0 && BigInt(u.cost_used ?? 0) >= BigInt(costLimit),
    };
    users.set(u.user_id, state);
    // Users at their concurrency limit can start nothing; those over quota are read to be stopped.
    if (state.quotaExhausted || limit < 0 || state.active < limit) {
      eligible.push(u.user_id);
      loads.push(state.quotaExhausted ? window : load);
    }
  }
  const groups: PlanInput["groups"] = new Map();
  if (eligible.length === 0) return { groups, users };
  const candidates = await tx.$queryRaw<CandidateRow[]>(
    prepared(
      "dispatch_candidates",
      Prisma.sql`
    SELECT j.id, b.owner_id, b.id AS batch_id, j.batch_index, b.priority, j.estimated_cost_micros, j.created_at, j.request_id,
      b.parallel_jobs, b.active_jobs, b.budget_cap_micros, (b.charged_micros + b.active_estimate_micros)::bigint AS committed_micros
    FROM unnest(${eligible}::text[], ${loads}::int[]) AS owner(id, load)
    CROSS JOIN LATERAL (
      SELECT * FROM (
        -- A batch offers what it can start: its free parallel_jobs slots, at most its waiting jobs.
        SELECT b.*, sum(LEAST(b.parallel_jobs - b.active_jobs, b.waiting_jobs)) OVER (ORDER BY b.priority DESC, b.created_at, b.id)
          - LEAST(b.parallel_jobs - b.active_jobs, b.waiting_jobs) AS slots_before,
          CASE WHEN b.priority > ${above} THEN ${window} ELSE owner.load END AS reach
        FROM (
          SELECT * FROM batches b
          WHERE b.owner_id = owner.id AND b.waiting_jobs > 0 AND b.stop_reason IS NULL AND b.status IN ('PENDING', 'RUNNING') AND NOT b.paused
            AND b.active_jobs < b.parallel_jobs
          ORDER BY b.priority DESC, b.created_at, b.id LIMIT ${window}
        ) b
      ) b WHERE b.slots_before < b.reach
    ) b
    CROSS JOIN LATERAL (
      SELECT * FROM simulation_jobs j
      WHERE j.batch_id = b.id AND j.status = 'PENDING' AND j.released_at IS NULL
      ORDER BY j.batch_index LIMIT LEAST(b.reach - b.slots_before, b.parallel_jobs - b.active_jobs)
    ) j
    UNION ALL
    SELECT j.id, j.owner_id, NULL, NULL, j.priority, j.estimated_cost_micros, j.created_at, j.request_id, NULL, NULL, NULL, NULL
    FROM unnest(${eligible}::text[], ${loads}::int[]) AS owner(id, load)
    CROSS JOIN LATERAL (
      SELECT * FROM (
        SELECT j.*, row_number() OVER (ORDER BY j.created_at) AS rank FROM (
          SELECT * FROM simulation_jobs j
          WHERE j.owner_id = owner.id AND j.batch_id IS NULL AND j.status = 'PENDING' AND j.released_at IS NULL
          ORDER BY j.created_at LIMIT ${window}
        ) j
      ) j WHERE j.rank <= owner.load OR j.priority > ${above}
    ) j
    ORDER BY batch_id NULLS FIRST, batch_index, created_at, id`,
    ),
  );
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
    let group = groups.get(key);
    if (!group) {
      const state = row.batch_id
        ? {
            slots: row.parallel_jobs! - row.active_jobs!,
            capMicros: row.budget_cap_micros === null ? null : Number(row.budget_cap_micros),
            committedMicros: Number(row.committed_micros),
            active: row.active_jobs!,
          }
        : { slots: 1, capMicros: null, committedMicros: 0, active: 0 };
      group = { state, queue: [] };
      groups.set(key, group);
    }
    group.queue.push(c);
  }
  return { groups, users };
}

/**
 * Owners at their monthly cost limit start nothing more: their waiting batches stop
 * with QUOTA_EXHAUSTED (running jobs finish) and their waiting single jobs are
 * cancelled. Returns the batches stopped.
 */
async function stopForQuota(tx: Raw, input: PlanInput, groups: string[], effects: SideEffects): Promise<string[]> {
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

/**
 * How a pass that only releases jobs commits: `synchronous_commit = off`, so it does not wait
 * for (nor pay the system call of) its own WAL flush; the WAL writer flushes it within
 * 3 x `wal_writer_delay` (200 ms by default), and any later synchronous commit (a worker's
 * claim of a released job among them) flushes it first. Only a Postgres crash in that window
 * loses a release, and a lost release only delays its jobs: a worker refuses a BullMQ job
 * whose row is not released ("not runnable") and drops it, and the next pass releases the
 * job again and adds it back (tests/e2e/reliability.int.test.ts). Counters and budgets are written
 * in the same transaction, so they roll back with it. Nothing that must survive (a stop, a
 * cancel, a claim, a charge) commits this way.
 */
const RELEASE_COMMIT = "off";

/**
 * One pass: releases waiting jobs into BullMQ as worker capacity (plus the
 * look-ahead), batch slots, tier concurrency and budgets allow. The decision is
 * made under one advisory lock; the rows are marked released in that transaction
 * and enqueued after commit (an enqueue lost to a crash is repaired by the sweep).
 */
async function dispatchOnce(deps: CoreDeps): Promise<number> {
  const capacity = await deps.registry.capacity();
  const effects = new SideEffects();
  const released = await inPreparedTransaction(deps.db, async (tx) => {
    // The pass's statements read the few rows they need through index scans: a bitmap
    // scan never marks the index entries of long-finished jobs dead (only a plain index
    // scan does), so on a server that never vacuums (this machine's CI Postgres runs
    // with autovacuum off) the busy count below re-read every such entry: 11,898 for
    // 149 jobs in flight after a few bench rounds, 9 ms a pass and growing.
    //
    // Its statements are prepared (`prepared`: planned once per connection, generically
    // and with sequential scans off too, see `inPreparedTransaction`): planning the
    // candidate read took 0.9 ms a pass against 0.16 ms to run it.
    //
    // A pass that only releases commits without waiting for its WAL flush (RELEASE_COMMIT);
    // one that stops a batch or cancels jobs sets it back before it writes.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK}), set_config('enable_bitmapscan', 'off', true), set_config('synchronous_commit', ${RELEASE_COMMIT}, true)`;
    // Busy slots: jobs released or running, counted on their partial index (at most capacity + look-ahead rows).
    const [busy] = await tx.$queryRaw<{ n: number; queued_priority: number | null }[]>(
      prepared(
        "dispatch_busy",
        Prisma.sql`
      SELECT count(*)::int AS n, min(priority) FILTER (WHERE status = 'PENDING') AS queued_priority
      FROM simulation_jobs WHERE ${activeJob()}`,
      ),
    );
    const window = capacity * (1 + LOOKAHEAD_PER_SLOT);
    const free = Math.max(0, window - (busy?.n ?? 0));
    // Overtaking jumps the lowest-priority queued job (with none queued there is nothing
    // to jump): up to a window per pass, while jobs released or running stay within
    // OVERTAKE_WINDOWS windows.
    const overtake = {
      free: busy?.queued_priority == null ? 0 : Math.min(window, Math.max(0, OVERTAKE_WINDOWS * window - (busy?.n ?? 0) - free)),
      abovePriority: busy?.queued_priority ?? 100,
    };
    // Read what this pass may release: the free slots, plus a window of the jobs
    // that may overtake (priorities run 0-100, so 101 is none).
    const loaded = await loadInput(tx, deps, {
      load: Math.max(free, 1),
      window: Math.max(window, 1),
      above: overtake.free > 0 ? overtake.abovePriority : 101,
    });
    const input: PlanInput = { ...loaded, free, overtake };
    const plan = planDispatch(input);
    if (plan.budgetExhausted.length > 0 || plan.quotaExhausted.length > 0) await tx.$executeRaw`SELECT set_config('synchronous_commit', 'on', true)`;
    for (const batchId of plan.budgetExhausted) {
      await stopBatch(tx, batchId, "BUDGET_EXHAUSTED", "The next job does not fit in the remaining budget", effects);
    }
    const quotaBatches = await stopForQuota(tx, input, plan.quotaExhausted, effects);
    const stopped = [...plan.budgetExhausted, ...quotaBatches];
    if (stopped.length > 0) await evaluateBatches(deps, tx, stopped, effects);
    if (plan.release.length === 0) return [];
    // A job cancelled meanwhile (its row lock held by a cancel or a stop rule) is not
    // updated here: enqueue only what this statement really released.
    const marked = await tx.$queryRaw<{ id: string }[]>(
      prepared(
        "dispatch_release",
        Prisma.sql`
      UPDATE simulation_jobs SET released_at = now()
      WHERE id = ANY(${plan.release.map((c) => c.id)}::text[]) AND ${waitingById}
      RETURNING id`,
      ),
    );
    const ids = new Set(marked.map((r) => r.id));
    return plan.release.filter((c) => ids.has(c.id));
  });
  await effects.run(deps);
  if (released.length === 0) return 0;
  // One round trip for the whole release; each add is idempotent (BullMQ job id = row id).
  try {
    await deps.queue.addMany(released.map((job) => ({ jobId: job.id, priority: job.priority, requestId: job.requestId, share: job.share })));
    deps.logger.debug("jobs released", { count: released.length });
  } catch (err) {
    deps.logger.warn("enqueue failed; the sweep will repair it", { count: released.length, error: String(err) });
  }
  return released.length;
}

interface InFlight {
  run: Promise<number>;
  again: boolean;
}
const inFlight = new WeakMap<CoreDeps, InFlight>();

/**
 * Shortest gap between the start of one pass and the next one of a burst. Under
 * load every read of events asks for a pass; the look-ahead keeps two jobs
 * queued per worker slot, so one pass per gap releases as much as one per
 * read would, at a fraction of the statements.
 */
export const DISPATCH_MIN_GAP_MS = 10;

/**
 * Dispatches once per process at a time. A call made while one runs joins it
 * and makes it run once more (its snapshot may predate the caller's commit), no
 * sooner than DISPATCH_MIN_GAP_MS after the previous pass started, so a burst of
 * admissions or events costs a pass per gap, not one waiting transaction (and
 * pooled connection) each behind the advisory lock.
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
      for (;;) {
        state.again = false;
        const started = Date.now();
        released += await dispatchOnce(deps);
        if (!state.again) break;
        const wait = DISPATCH_MIN_GAP_MS - (Date.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      inFlight.delete(deps);
    }
    return released;
  })();
  inFlight.set(deps, state);
  return state.run;
}

/**
 * Asks for a dispatch pass after a change that may let jobs start (admission,
 * cancel): the reconcilers are woken over Redis pub/sub and run it, coalesced
 * with the passes their events cause, so an API process never holds the
 * dispatch lock or its pool for it. With no reconciler listening (or Redis
 * failing) this process dispatches itself.
 */
export async function requestDispatch(deps: CoreDeps): Promise<void> {
  const listening = await deps.queue.wakeDispatchers().catch(() => 0);
  if (listening === 0) await dispatch(deps);
}
