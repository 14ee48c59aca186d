import { failedDeliveries } from "./webhooks.ts";
import { activeJob } from "./sql.ts";
import { redisKeys } from "@simbatch/contracts";
import type { Tier } from "@simbatch/config";
import type { Redis } from "@simbatch/queue";
import type { CoreDeps } from "./deps.ts";

/** What an operator watches: where jobs are, how much worker capacity is live, event backlog and lags. */
export interface OperationsSnapshot {
  jobs: Record<"PENDING" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED", number>;
  /** PENDING jobs still waiting in Postgres (for a worker slot, or for their batch's or tier's limit). */
  waiting_in_postgres: number;
  /**
   * Waiting jobs that their batch's `parallel_jobs` and their owner's tier concurrency
   * would let start now: what only more worker capacity would run (budgets aside).
   */
  waiting_for_worker_slot: number;
  /** Age of the oldest job waiting in Postgres (0 when none waits). */
  oldest_waiting_age_seconds: number;
  /** PENDING jobs released to BullMQ that no worker has claimed yet. */
  released_not_started: number;
  /** Age of the oldest of those since its release (0 when none): dispatch-to-claim lag. */
  oldest_released_age_seconds: number;
  batches_open: number;
  queue: Record<string, number>;
  workers: { live: number; capacity: number };
  /**
   * dead_lettered: stream entries that were not valid events, kept in `<prefix>:events:dead`;
   * oldest_age_seconds: age of the oldest event no reconciler has applied yet (0 when none): reconciler lag.
   */
  events: { backlog: number; unacknowledged: number; dead_lettered: number; oldest_age_seconds: number };
  /** Micro-dollars charged for ended jobs, all users, all time. */
  charged_micros: number;
}

interface DemandRow {
  tier: Tier;
  active: number;
  room: number;
  oldest_s: number | null;
}

/**
 * Per owner with waiting work: the jobs its batches' free `parallel_jobs` slots
 * and its waiting single jobs would start, its active jobs and tier, and the age
 * of its oldest waiting job. Reads the batches with waiting work
 * (`batches_dispatch_idx`) and the waiting single jobs
 * (`simulation_jobs_waiting_single_idx`): the backlog's batches, never history.
 * A batch's jobs share its creation time, so its age is theirs.
 */
async function waitingDemand(deps: CoreDeps): Promise<{ forSlot: number; oldestSeconds: number }> {
  const rows = await deps.db.$queryRaw<DemandRow[]>`
    WITH b AS (
      SELECT owner_id, sum(LEAST(waiting_jobs, GREATEST(parallel_jobs - active_jobs, 0)))::int AS room, min(created_at) AS oldest
      FROM batches WHERE waiting_jobs > 0 AND stop_reason IS NULL AND status IN ('PENDING', 'RUNNING')
      GROUP BY owner_id
    ), s AS (
      SELECT owner_id, count(*)::int AS room, min(created_at) AS oldest
      FROM simulation_jobs WHERE batch_id IS NULL AND status = 'PENDING' AND released_at IS NULL
      GROUP BY owner_id
    ), o AS (
      SELECT owner_id, COALESCE(b.room, 0) + COALESCE(s.room, 0) AS room, LEAST(b.oldest, s.oldest) AS oldest
      FROM b FULL JOIN s USING (owner_id)
    )
    SELECT u.tier::text AS tier, COALESCE(c.active_jobs, 0)::int AS active, o.room,
      GREATEST(EXTRACT(EPOCH FROM (now() - o.oldest)), 0)::float8 AS oldest_s
    FROM o JOIN LATERAL (SELECT u.tier FROM users u WHERE u.id = o.owner_id LIMIT 1) u ON true
      LEFT JOIN LATERAL (SELECT c.active_jobs FROM user_counters c WHERE c.user_id = o.owner_id LIMIT 1) c ON true`;
  let forSlot = 0;
  let oldestSeconds = 0;
  for (const r of rows) {
    const limit = deps.limits[r.tier]?.concurrency ?? 1;
    forSlot += limit < 0 ? r.room : Math.min(r.room, Math.max(0, limit - r.active));
    oldestSeconds = Math.max(oldestSeconds, Number(r.oldest_s ?? 0));
  }
  return { forSlot, oldestSeconds };
}

/** Age of the stream's first entry (stream ids are Redis-clock milliseconds; applied entries are deleted). */
async function oldestEventAge(redis: Redis, key: string): Promise<number> {
  const [first, time] = await Promise.all([redis.xrange(key, "-", "+", "COUNT", 1), redis.time()]);
  const id = first[0]?.[0];
  if (!id) return 0;
  const nowMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
  return Math.max(0, nowMs - Number(id.split("-")[0])) / 1000;
}

export async function operationsSnapshot(deps: CoreDeps & { redis: Redis; redisPrefix: string }): Promise<OperationsSnapshot> {
  const keys = redisKeys(deps.redisPrefix);
  const [rows, batches, queue, workers, backlog, pending, dead, released, demand, eventAge] = await Promise.all([
    // Ended and waiting jobs from the per-user counters (one pass); the in-flight ones
    // (at most capacity + look-ahead) counted on their partial index. No scan of the jobs table.
    deps.db.$queryRaw<{ status: string; released: boolean; n: number }[]>`
      WITH c AS (
        SELECT COALESCE(sum(jobs_completed), 0)::int AS completed, COALESCE(sum(jobs_failed), 0)::int AS failed,
          COALESCE(sum(jobs_cancelled), 0)::int AS cancelled,
          (COALESCE(sum(waiting_jobs), 0) + (SELECT COALESCE(sum(waiting_jobs), 0) FROM user_admissions))::int AS waiting
        FROM user_counters
      )
      SELECT s.status, false AS released, s.n FROM c,
        LATERAL (VALUES ('COMPLETED', c.completed), ('FAILED', c.failed), ('CANCELLED', c.cancelled), ('PENDING', c.waiting)) AS s(status, n)
      UNION ALL SELECT status::text, (released_at IS NOT NULL), count(*)::int FROM simulation_jobs
        WHERE ${activeJob()} GROUP BY 1, 2`,
    deps.db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM batches WHERE completed_at IS NULL`,
    deps.queue.queue.getJobCounts("waiting", "prioritized", "active", "completed", "failed", "delayed"),
    deps.registry.live(),
    deps.redis.xlen(keys.events),
    // XPENDING fails until a reconciler has created the group: nothing is unacknowledged then.
    (deps.redis.xpending(keys.events, keys.eventsGroup) as Promise<[number, ...unknown[]]>).then((r) => Number(r[0] ?? 0)).catch(() => 0),
    deps.redis.xlen(keys.eventsDead),
    // In flight only (simulation_jobs_active_idx): at most capacity + look-ahead rows.
    deps.db.$queryRaw<{ oldest_s: number | null; charged: bigint | null }[]>`
      SELECT GREATEST(EXTRACT(EPOCH FROM (now() - min(released_at))), 0)::float8 AS oldest_s,
        (SELECT sum(charged_micros) FROM user_counters)::bigint AS charged
      FROM simulation_jobs WHERE ${activeJob()} AND status = 'PENDING'`,
    waitingDemand(deps),
    oldestEventAge(deps.redis, keys.events),
  ]);
  const jobs = { PENDING: 0, RUNNING: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0 };
  let waiting = 0;
  let releasedCount = 0;
  for (const r of rows) {
    jobs[r.status as keyof typeof jobs] += r.n;
    if (r.status !== "PENDING") continue;
    if (r.released) releasedCount += r.n;
    else waiting += r.n;
  }
  return {
    jobs,
    waiting_in_postgres: waiting,
    waiting_for_worker_slot: demand.forSlot,
    oldest_waiting_age_seconds: demand.oldestSeconds,
    released_not_started: releasedCount,
    oldest_released_age_seconds: Number(released[0]?.oldest_s ?? 0),
    batches_open: batches[0]?.n ?? 0,
    queue,
    workers: { live: workers.workers, capacity: workers.capacity },
    events: { backlog: Number(backlog), unacknowledged: pending, dead_lettered: Number(dead), oldest_age_seconds: eventAge },
    charged_micros: Number(released[0]?.charged ?? 0),
  };
}

/**
 * Webhook delivery attempts that failed, in all (a Prometheus counter): read on
 * the partial index of failed attempts (webhook_deliveries_failed_idx), so it
 * costs what failed, never what was delivered.
 */
export async function webhookDeliveriesFailed(deps: CoreDeps): Promise<number> {
  return failedDeliveries(deps.db);
}
