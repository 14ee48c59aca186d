import { Client } from "pg";

/**
 * Whole-database invariants checked after a fault (reliability and chaos tests).
 * The counter check is the scale test's counterDrift(): every counter kept by
 * the triggers recomputed from the raw job and ledger rows.
 */
export async function withSql<T>(databaseUrl: string, fn: (sql: Client) => Promise<T>): Promise<T> {
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/** Counters that differ from what the raw rows say (empty lists: exact). */
export async function counterDrift(sql: Client): Promise<Record<string, unknown[]>> {
  const batchesDrift = await sql.query(`
    WITH a AS (
      SELECT batch_id,
        count(*) FILTER (WHERE status = 'PENDING' AND released_at IS NULL)::int AS waiting,
        count(*) FILTER (WHERE status = 'RUNNING' OR (status = 'PENDING' AND released_at IS NOT NULL))::int AS active,
        count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
        count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
        count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
        COALESCE(sum(cost_micros) FILTER (WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')), 0)::bigint AS charged,
        COALESCE(sum(tokens_used) FILTER (WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')), 0)::bigint AS tokens,
        COALESCE(sum(estimated_cost_micros) FILTER (WHERE status = 'RUNNING' OR (status = 'PENDING' AND released_at IS NOT NULL)), 0)::bigint AS active_estimate,
        array_agg(id ORDER BY batch_index) AS ids
      FROM simulation_jobs WHERE batch_id IS NOT NULL GROUP BY batch_id)
    SELECT b.id, b.waiting_jobs, a.waiting, b.active_jobs, a.active, b.completed_jobs, a.completed, b.failed_jobs, a.failed,
      b.cancelled_jobs, a.cancelled, b.charged_micros, a.charged, b.charged_tokens, a.tokens, b.active_estimate_micros, a.active_estimate
    FROM batches b FULL JOIN a ON a.batch_id = b.id
    WHERE (b.waiting_jobs, b.active_jobs, b.completed_jobs, b.failed_jobs, b.cancelled_jobs, b.charged_micros, b.charged_tokens, b.active_estimate_micros, b.job_ids)
      IS DISTINCT FROM (a.waiting, a.active, a.completed, a.failed, a.cancelled, a.charged, a.tokens, a.active_estimate, a.ids)
    LIMIT 5`);
  const usersDrift = await sql.query(`
    WITH a AS (
      SELECT owner_id,
        count(*) FILTER (WHERE status = 'PENDING' AND released_at IS NULL)::int AS waiting,
        count(*) FILTER (WHERE status = 'RUNNING' OR (status = 'PENDING' AND released_at IS NOT NULL))::int AS active,
        count(*) FILTER (WHERE batch_id IS NULL AND status IN ('PENDING', 'RUNNING'))::int AS unfinished_single,
        COALESCE(sum(estimated_cost_micros) FILTER (WHERE status IN ('PENDING', 'RUNNING')), 0)::bigint AS unfinished_estimate,
        count(*)::bigint AS total,
        count(*) FILTER (WHERE status IN ('PENDING', 'RUNNING'))::bigint AS unfinished,
        count(*) FILTER (WHERE status = 'COMPLETED')::bigint AS completed,
        count(*) FILTER (WHERE status = 'FAILED')::bigint AS failed,
        count(*) FILTER (WHERE status = 'CANCELLED')::bigint AS cancelled,
        COALESCE(sum(cost_micros) FILTER (WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')), 0)::bigint AS charged,
        COALESCE(sum(tokens_used) FILTER (WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')), 0)::bigint AS tokens,
        COALESCE(sum(cost_micros) FILTER (WHERE batch_id IS NOT NULL AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')), 0)::bigint AS batch_charged,
        COALESCE(sum(tokens_used) FILTER (WHERE batch_id IS NOT NULL AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')), 0)::bigint AS batch_tokens,
        round(COALESCE(sum(extract(epoch FROM completed_at - started_at)) FILTER (WHERE completed_at IS NOT NULL AND started_at IS NOT NULL), 0)::numeric, 3) AS duration_s,
        count(*) FILTER (WHERE completed_at IS NOT NULL AND started_at IS NOT NULL)::bigint AS timed
      FROM simulation_jobs GROUP BY owner_id)
    SELECT c.user_id, a.owner_id, c.waiting_jobs, a.waiting, c.active_jobs, a.active, c.jobs_total, a.total, c.charged_micros, a.charged
    FROM user_totals c FULL JOIN a ON a.owner_id = c.user_id
    WHERE (c.waiting_jobs, c.active_jobs, c.unfinished_single_jobs, c.unfinished_estimate_micros, c.jobs_total, c.jobs_unfinished, c.jobs_completed,
        c.jobs_failed, c.jobs_cancelled, c.charged_micros, c.charged_tokens, c.batch_charged_micros, c.batch_charged_tokens,
        round(c.duration_seconds_sum::numeric, 3), c.duration_count)
      IS DISTINCT FROM (a.waiting, a.active, a.unfinished_single, a.unfinished_estimate, a.total, a.unfinished, a.completed, a.failed, a.cancelled,
        a.charged, a.tokens, a.batch_charged, a.batch_tokens, a.duration_s, a.timed)
    LIMIT 5`);
  const periodsDrift = await sql.query(`
    WITH x AS (
      SELECT owner_id AS user_id, admitted_period AS period, (NOT (status = 'CANCELLED' AND started_at IS NULL))::int AS sims,
        0 AS completed, 0 AS failed, 0::bigint AS cost, 0::bigint AS tokens, 0::bigint AS api_calls FROM simulation_jobs
      UNION ALL
      SELECT owner_id, to_char(completed_at, 'YYYY-MM'), 0, (status = 'COMPLETED')::int, (status = 'FAILED')::int, 0, 0, 0
      FROM simulation_jobs WHERE status IN ('COMPLETED', 'FAILED') AND completed_at IS NOT NULL
      UNION ALL
      SELECT user_id, period, simulations, 0, 0, cost_micros, tokens, api_calls FROM ledger_entries),
    a AS (
      SELECT user_id, period, sum(sims)::bigint AS sims, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
        sum(cost)::bigint AS cost, sum(tokens)::bigint AS tokens, sum(api_calls)::bigint AS api_calls
      FROM x GROUP BY user_id, period),
    t AS (SELECT user_id, period, simulations AS sims, completed, failed, cost_micros AS cost, tokens, ledger_api_calls AS api_calls FROM usage_totals)
    (SELECT 'table' AS side, * FROM t WHERE (sims, completed, failed, cost, tokens, api_calls) <> (0, 0, 0, 0, 0, 0)
     EXCEPT SELECT 'table', * FROM a WHERE (sims, completed, failed, cost, tokens, api_calls) <> (0, 0, 0, 0, 0, 0))
    UNION ALL
    (SELECT 'rows', * FROM a WHERE (sims, completed, failed, cost, tokens, api_calls) <> (0, 0, 0, 0, 0, 0)
     EXCEPT SELECT 'rows', * FROM t WHERE (sims, completed, failed, cost, tokens, api_calls) <> (0, 0, 0, 0, 0, 0))
    LIMIT 5`);
  return { batches: batchesDrift.rows, user_counters: usersDrift.rows, usage_periods: periodsDrift.rows };
}

/**
 * Money agrees everywhere: the ledger's charges, the sum of job costs (each the
 * sum over its attempts), the usage rollup (usage_totals) and the batches'
 * actual costs. Returns the mismatches (empty: all agree) and the totals.
 */
export async function moneyMismatch(sql: Client): Promise<{ mismatches: unknown[]; totals: Record<string, string> }> {
  const perJob = await sql.query(`
    SELECT j.id, j.status::text, j.cost_micros::text, COALESCE(l.s, 0)::text AS ledger
    FROM simulation_jobs j LEFT JOIN (SELECT job_id, sum(cost_micros) AS s FROM ledger_entries WHERE kind = 'CHARGE' GROUP BY job_id) l ON l.job_id = j.id
    WHERE j.status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND j.cost_micros <> COALESCE(l.s, 0) LIMIT 5`);
  const perBatch = await sql.query(`
    SELECT b.id, b.charged_micros::text, COALESCE(s.s, 0)::text AS jobs
    FROM batches b LEFT JOIN (SELECT batch_id, sum(cost_micros) AS s FROM simulation_jobs
      WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') GROUP BY batch_id) s ON s.batch_id = b.id
    WHERE b.charged_micros <> COALESCE(s.s, 0) LIMIT 5`);
  const t = await sql.query(`SELECT
    (SELECT COALESCE(sum(cost_micros), 0) FROM ledger_entries WHERE kind = 'CHARGE')::text AS ledger,
    (SELECT COALESCE(sum(cost_micros), 0) FROM simulation_jobs)::text AS jobs,
    (SELECT COALESCE(sum(cost_micros), 0) FROM usage_totals)::text AS usage,
    (SELECT COALESCE(sum(charged_micros), 0) FROM batches)::text AS batches,
    (SELECT COALESCE(sum(cost_micros), 0) FROM simulation_jobs WHERE batch_id IS NOT NULL)::text AS batch_jobs,
    (SELECT COALESCE(sum(cost_micros), 0) FROM ledger_entries WHERE kind <> 'CHARGE')::text AS adjustments`);
  const totals = t.rows[0] as Record<string, string>;
  const mismatches: unknown[] = [...perJob.rows.map((r) => ({ job: r })), ...perBatch.rows.map((r) => ({ batch: r }))];
  if (totals.ledger !== totals.jobs) mismatches.push({ ledger: totals.ledger, jobs: totals.jobs });
  if (BigInt(totals.usage!) !== BigInt(totals.ledger!) + BigInt(totals.adjustments!)) mismatches.push({ usage: totals.usage, ledger: totals.ledger });
  if (totals.batches !== totals.batch_jobs) mismatches.push({ batches: totals.batches, batch_jobs: totals.batch_jobs });
  return { mismatches, totals };
}
