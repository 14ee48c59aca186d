import { periodOf, usd } from "@simbatch/contracts";
import { Prisma } from "@simbatch/db";
import type { Redis } from "@simbatch/queue";
import type { CoreDeps } from "./deps.ts";
import { operationsSnapshot, type OperationsSnapshot } from "./operations.ts";

/**
 * What the operators' dashboard (/admin/dashboard) shows beyond the BullMQ
 * queues. Every statement reads what is in flight or one row per account,
 * never a table's history: waiting work and open batches on their partial
 * indexes, running jobs on theirs, the period's spend by a primary-key probe
 * per user into the usage rollup (counters kept by triggers, see
 * docs/architecture.md).
 */
export interface DashboardSnapshot {
  /** When the snapshot was read (ISO 8601). */
  at: string;
  operations: OperationsSnapshot;
  waiting: {
    /** Jobs waiting in Postgres for a slot (equals operations.waiting_in_postgres). */
    total: number;
    /** Age of the oldest waiting job, in seconds; null when nothing waits. */
    oldest_age_s: number | null;
    /** By user and priority, highest priority first, then most jobs; at most `DASHBOARD_LIMITS.waitingGroups` rows. */
    by_user_priority: { user_id: string; priority: number; jobs: number; oldest_age_s: number }[];
    /** Groups left out of `by_user_priority`. */
    groups_left_out: number;
  };
  workers: {
    live: number;
    capacity: number;
    /** Jobs holding a slot in Postgres: released to BullMQ or running. */
    busy_slots: number;
    /** Each live worker process with the jobs BullMQ has handed it (active). */
    list: { id: string; concurrency: number; running: number }[];
    /** Active BullMQ jobs of workers that are no longer live (their lock has yet to expire). */
    running_elsewhere: number;
  };
  events: OperationsSnapshot["events"] & {
    /** Age of the oldest event no reconciler has applied yet, in ms; 0 when the stream is empty. */
    reconciler_lag_ms: number;
  };
  batches: {
    /** Unfinished batches by status. */
    open_by_status: Record<string, number>;
    /** The oldest unfinished batches, at most `DASHBOARD_LIMITS.openBatches`. */
    open: DashboardBatch[];
  };
  spend: {
    period: string;
    cost_usd: number;
    tokens: number;
    simulations: number;
    jobs_completed: number;
    jobs_failed: number;
    /** Users who spent most this period, at most `DASHBOARD_LIMITS.topSpenders`. */
    top_users: { user_id: string; cost_usd: number; simulations: number }[];
  };
}

export interface DashboardBatch {
  batch_id: string;
  user_id: string;
  status: string;
  priority: number;
  total_jobs: number;
  waiting: number;
  /** Released to BullMQ, not started. */
  released: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** Ended jobs count 100 each, running jobs their own progress. */
  progress_percent: number;
  /** What ended jobs cost plus what running jobs have spent so far (their superseded attempts included). */
  cost_usd: number;
  budget_cap_usd: number | null;
  stop_reason: string | null;
  age_s: number;
}

export const DASHBOARD_LIMITS = { waitingGroups: 50, openBatches: 20, topSpenders: 5 } as const;

/**
 * The dashboard's statements, each bounded by what is in flight or by the
 * number of accounts (their plans are checked in tests/e2e/admin-dashboard-data.int.test.ts).
 */
export const DASHBOARD_SQL = {
  /**
   * Waiting jobs by user and priority: batch jobs from the open batches'
   * counters (batches_open_idx; a finished batch has nothing waiting), single
   * jobs on simulation_jobs_waiting_single_idx.
   */
  waiting: () => Prisma.sql`
    SELECT user_id, priority, sum(jobs)::int AS jobs, min(oldest) AS oldest FROM (
      SELECT owner_id AS user_id, priority, sum(waiting_jobs) AS jobs, min(created_at) AS oldest
        FROM batches WHERE completed_at IS NULL AND waiting_jobs > 0 GROUP BY 1, 2
      UNION ALL
      SELECT owner_id, priority, count(*), min(created_at)
        FROM simulation_jobs WHERE batch_id IS NULL AND status = 'PENDING' AND released_at IS NULL GROUP BY 1, 2
    ) w GROUP BY 1, 2 ORDER BY priority DESC, jobs DESC, user_id`,
  /** Unfinished batches by status (batches_open_idx). */
  openByStatus: () => Prisma.sql`SELECT status::text, count(*)::int AS n FROM batches WHERE completed_at IS NULL GROUP BY 1 ORDER BY 1`,
  /** The oldest unfinished batches (batches_open_idx) with their counters, each one's running jobs on simulation_jobs_running_batch_idx. */
  openBatches: () => Prisma.sql`
    SELECT b.id, b.owner_id, b.status::text, b.priority, b.total_jobs, b.waiting_jobs, b.active_jobs, b.completed_jobs, b.failed_jobs,
      b.cancelled_jobs, b.charged_micros, b.budget_cap_micros, b.stop_reason::text, b.created_at,
      COALESCE(r.n, 0)::int AS running, COALESCE(r.progress, 0)::float8 AS running_progress, COALESCE(r.cost, 0)::bigint AS running_cost_micros
    FROM (SELECT * FROM batches WHERE completed_at IS NULL ORDER BY created_at LIMIT ${DASHBOARD_LIMITS.openBatches}) b
    LEFT JOIN LATERAL (
      SELECT count(*) AS n, sum(j.progress_percent) AS progress, sum(j.cost_micros) AS cost
      FROM simulation_jobs j WHERE j.batch_id = b.id AND j.status = 'RUNNING'
    ) r ON true
    ORDER BY b.created_at, b.id`,
  /**
   * The period's usage rollup by one primary-key probe per user into
   * usage_periods and its admission shards (the LIMIT keeps the planner from
   * turning the probes into a scan of every period). The first row is the total,
   * the others the top spenders.
   */
  spend: (period: string) => Prisma.sql`
    WITH p AS MATERIALIZED (
      SELECT u.id AS user_id, COALESCE(x.cost_micros, 0) AS cost, COALESCE(x.tokens, 0) AS tokens,
        COALESCE(x.simulations, 0) + COALESCE(a.simulations, 0) AS simulations, COALESCE(x.completed, 0) AS completed, COALESCE(x.failed, 0) AS failed
      FROM users u
      LEFT JOIN LATERAL (SELECT * FROM usage_periods x WHERE x.user_id = u.id AND x.period = ${period} LIMIT 1) x ON true
      LEFT JOIN LATERAL (SELECT sum(s.simulations) AS simulations FROM usage_admissions s WHERE s.user_id = u.id AND s.period = ${period}) a ON true
    )
    (SELECT NULL::text AS user_id, COALESCE(sum(cost), 0)::bigint AS cost, COALESCE(sum(tokens), 0)::bigint AS tokens,
      COALESCE(sum(simulations), 0)::bigint AS simulations, COALESCE(sum(completed), 0)::bigint AS completed, COALESCE(sum(failed), 0)::bigint AS failed FROM p)
    UNION ALL
    (SELECT user_id, cost::bigint, tokens::bigint, simulations::bigint, completed::bigint, failed::bigint FROM p
      WHERE cost > 0 ORDER BY cost DESC, user_id LIMIT ${DASHBOARD_LIMITS.topSpenders})`,
};

type Deps = CoreDeps & { redis: Redis; redisPrefix: string };

export async function dashboardSnapshot(deps: Deps): Promise<DashboardSnapshot> {
  const now = deps.clock.now();
  const [operations, waiting, workers, active, batches, spend] = await Promise.all([
    operationsSnapshot(deps),
    waitingWork(deps, now),
    deps.registry.list(),
    deps.queue.activeByWorker(),
    openBatches(deps, now),
    periodSpend(deps, periodOf(now)),
  ]);
  const live = new Set(workers.map((w) => w.id));
  const elsewhere = Object.entries(active.byWorker).reduce((sum, [id, n]) => (live.has(id) ? sum : sum + n), 0);
  return {
    at: now.toISOString(),
    operations,
    waiting,
    workers: {
      live: workers.length,
      capacity: workers.reduce((sum, w) => sum + w.concurrency, 0),
      busy_slots: operations.jobs.RUNNING + operations.released_not_started,
      list: workers.map((w) => ({ id: w.id, concurrency: w.concurrency, running: active.byWorker[w.id] ?? 0 })),
      running_elsewhere: elsewhere,
    },
    // The operations snapshot's reconciler lag (oldest unapplied event, on Redis' clock), in ms for the page.
    events: { ...operations.events, reconciler_lag_ms: Math.round(operations.events.oldest_age_seconds * 1000) },
    batches,
    spend,
  };
}

const ageS = (now: Date, at: Date) => Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));

async function waitingWork(deps: Deps, now: Date): Promise<DashboardSnapshot["waiting"]> {
  const rows = await deps.db.$queryRaw<{ user_id: string; priority: number; jobs: number; oldest: Date }[]>(DASHBOARD_SQL.waiting());
  const groups = rows.map((r) => ({ user_id: r.user_id, priority: r.priority, jobs: r.jobs, oldest_age_s: ageS(now, r.oldest) }));
  const shown = groups.slice(0, DASHBOARD_LIMITS.waitingGroups);
  return {
    total: groups.reduce((sum, g) => sum + g.jobs, 0),
    oldest_age_s: groups.length === 0 ? null : Math.max(...groups.map((g) => g.oldest_age_s)),
    by_user_priority: shown,
    groups_left_out: groups.length - shown.length,
  };
}

interface OpenBatchRow {
  id: string;
  owner_id: string;
  status: string;
  priority: number;
  total_jobs: number;
  waiting_jobs: number;
  active_jobs: number;
  completed_jobs: number;
  failed_jobs: number;
  cancelled_jobs: number;
  charged_micros: bigint;
  budget_cap_micros: bigint | null;
  stop_reason: string | null;
  created_at: Date;
  running: number;
  running_progress: number;
  running_cost_micros: bigint;
}

async function openBatches(deps: Deps, now: Date): Promise<DashboardSnapshot["batches"]> {
  const [byStatus, rows] = await Promise.all([
    deps.db.$queryRaw<{ status: string; n: number }[]>(DASHBOARD_SQL.openByStatus()),
    deps.db.$queryRaw<OpenBatchRow[]>(DASHBOARD_SQL.openBatches()),
  ]);
  return {
    open_by_status: Object.fromEntries(byStatus.map((r) => [r.status, r.n])),
    open: rows.map((r) => {
      const ended = r.completed_jobs + r.failed_jobs + r.cancelled_jobs;
      const progress = r.total_jobs === 0 ? 0 : (ended * 100 + r.running_progress) / r.total_jobs;
      return {
        batch_id: r.id,
        user_id: r.owner_id,
        status: r.status,
        priority: r.priority,
        total_jobs: r.total_jobs,
        waiting: r.waiting_jobs,
        released: r.active_jobs - r.running,
        running: r.running,
        completed: r.completed_jobs,
        failed: r.failed_jobs,
        cancelled: r.cancelled_jobs,
        progress_percent: Math.round(progress * 100) / 100,
        cost_usd: usd(BigInt(r.charged_micros) + BigInt(r.running_cost_micros)),
        budget_cap_usd: r.budget_cap_micros === null ? null : usd(r.budget_cap_micros),
        stop_reason: r.stop_reason,
        age_s: ageS(now, r.created_at),
      };
    }),
  };
}

interface SpendRow {
  user_id: string | null;
  cost: bigint;
  tokens: bigint;
  simulations: bigint;
  completed: bigint;
  failed: bigint;
}

async function periodSpend(deps: Deps, period: string): Promise<DashboardSnapshot["spend"]> {
  const rows = await deps.db.$queryRaw<SpendRow[]>(DASHBOARD_SQL.spend(period));
  const [total, ...top] = rows;
  return {
    period,
    cost_usd: usd(total?.cost ?? 0n),
    tokens: Number(total?.tokens ?? 0),
    simulations: Number(total?.simulations ?? 0),
    jobs_completed: Number(total?.completed ?? 0),
    jobs_failed: Number(total?.failed ?? 0),
    top_users: top.map((r) => ({ user_id: r.user_id!, cost_usd: usd(r.cost), simulations: Number(r.simulations) })),
  };
}
