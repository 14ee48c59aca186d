import { activeJob } from "./sql.ts";
import { redisKeys } from "@simbatch/contracts";
import type { Redis } from "@simbatch/queue";
import type { CoreDeps } from "./deps.ts";

/** What an operator watches: where jobs are, how much worker capacity is live, event backlog. */
export interface OperationsSnapshot {
  jobs: Record<"PENDING" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED", number>;
  /** PENDING jobs still waiting in Postgres for a slot. */
  waiting_in_postgres: number;
  /** PENDING jobs released to BullMQ that no worker has claimed yet. */
  released_not_started: number;
  batches_open: number;
  queue: Record<string, number>;
  workers: { live: number; capacity: number };
  /** dead_lettered: stream entries that were not valid events, kept in `<prefix>:events:dead`. */
  events: { backlog: number; unacknowledged: number; dead_lettered: number };
}

export async function operationsSnapshot(deps: CoreDeps & { redis: Redis; redisPrefix: string }): Promise<OperationsSnapshot> {
  const keys = redisKeys(deps.redisPrefix);
  const [rows, batches, queue, workers, backlog, pending, dead] = await Promise.all([
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
  ]);
  const jobs = { PENDING: 0, RUNNING: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0 };
  let waiting = 0;
  let released = 0;
  for (const r of rows) {
    jobs[r.status as keyof typeof jobs] += r.n;
    if (r.status !== "PENDING") continue;
    if (r.released) released += r.n;
    else waiting += r.n;
  }
  return {
    jobs,
    waiting_in_postgres: waiting,
    released_not_started: released,
    batches_open: batches[0]?.n ?? 0,
    queue,
    workers: { live: workers.workers, capacity: workers.capacity },
    events: { backlog: Number(backlog), unacknowledged: pending, dead_lettered: Number(dead) },
  };
}
