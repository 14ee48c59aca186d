-- Control plane at scale (issue 8): counters maintained in the transactions that
-- change the rows they count, so that dispatch, admission, quota and usage read
-- a handful of rows instead of aggregating a user's whole history.
--
-- The counters are kept by statement-level triggers on simulation_jobs and
-- ledger_entries (transition tables: one pass per statement, not per row), so
-- every path that changes a job (admission, release, claim, events, cancel,
-- stop rules, sweep) keeps them exact without remembering to. Rows are locked in
-- a fixed order: batches, then user_counters, then usage_periods, each by key.

-- Per batch: where its jobs are, and what it has spent and committed.
ALTER TABLE "batches"
  ADD COLUMN "job_ids" TEXT[] NOT NULL DEFAULT '{}',
  ADD COLUMN "waiting_jobs" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "active_jobs" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "completed_jobs" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "failed_jobs" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "cancelled_jobs" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "charged_micros" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "charged_tokens" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "active_estimate_micros" BIGINT NOT NULL DEFAULT 0;

-- Per user: what dispatch and admission need, and lifetime job statistics.
CREATE TABLE "user_counters" (
  "user_id" TEXT NOT NULL PRIMARY KEY,
  "waiting_jobs" INTEGER NOT NULL DEFAULT 0,
  "active_jobs" INTEGER NOT NULL DEFAULT 0,
  "unfinished_single_jobs" INTEGER NOT NULL DEFAULT 0,
  "unfinished_estimate_micros" BIGINT NOT NULL DEFAULT 0,
  "last_released_at" TIMESTAMP(3),
  "jobs_total" BIGINT NOT NULL DEFAULT 0,
  "jobs_unfinished" BIGINT NOT NULL DEFAULT 0,
  "jobs_completed" BIGINT NOT NULL DEFAULT 0,
  "jobs_failed" BIGINT NOT NULL DEFAULT 0,
  "jobs_cancelled" BIGINT NOT NULL DEFAULT 0,
  "charged_micros" BIGINT NOT NULL DEFAULT 0,
  "charged_tokens" BIGINT NOT NULL DEFAULT 0,
  "batch_charged_micros" BIGINT NOT NULL DEFAULT 0,
  "batch_charged_tokens" BIGINT NOT NULL DEFAULT 0,
  "duration_seconds_sum" DOUBLE PRECISION NOT NULL DEFAULT 0,
  "duration_count" BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX "user_counters_waiting_idx" ON "user_counters" ("user_id") WHERE "waiting_jobs" > 0;

-- Per user and billing period: the usage rollup (api_calls stays the flushed API-call count).
ALTER TABLE "usage_periods"
  ADD COLUMN "ledger_api_calls" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "simulations" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "cost_micros" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "tokens" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "completed" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "failed" BIGINT NOT NULL DEFAULT 0;

-- The contribution of one row to every counter; a change contributes new minus old.
CREATE TYPE simbatch_job_delta AS (
  batch_id TEXT, owner_id TEXT, admitted_period TEXT, ended_period TEXT, released_at TIMESTAMP(3),
  waiting INTEGER, active INTEGER, completed INTEGER, failed INTEGER, cancelled INTEGER, unfinished INTEGER,
  unfinished_single INTEGER, charged BIGINT, tokens BIGINT, active_estimate BIGINT, unfinished_estimate BIGINT,
  counted INTEGER, duration_s DOUBLE PRECISION, timed INTEGER
);

CREATE FUNCTION simbatch_job_contrib(j simulation_jobs, sign INTEGER) RETURNS simbatch_job_delta LANGUAGE sql IMMUTABLE AS $$
  SELECT ROW(j.batch_id, j.owner_id, j.admitted_period,
    CASE WHEN j.status IN ('COMPLETED', 'FAILED') AND j.completed_at IS NOT NULL THEN to_char(j.completed_at, 'YYYY-MM') END,
    j.released_at,
    sign * (j.status = 'PENDING' AND j.released_at IS NULL)::int,
    sign * ((j.status = 'PENDING' AND j.released_at IS NOT NULL) OR j.status = 'RUNNING')::int,
    sign * (j.status = 'COMPLETED')::int,
    sign * (j.status = 'FAILED')::int,
    sign * (j.status = 'CANCELLED')::int,
    sign * (j.status IN ('PENDING', 'RUNNING'))::int,
    sign * (j.batch_id IS NULL AND j.status IN ('PENDING', 'RUNNING'))::int,
    sign * CASE WHEN j.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN j.cost_micros ELSE 0 END,
    sign * CASE WHEN j.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN j.tokens_used ELSE 0 END,
    sign * CASE WHEN (j.status = 'PENDING' AND j.released_at IS NOT NULL) OR j.status = 'RUNNING' THEN j.estimated_cost_micros ELSE 0 END,
    sign * CASE WHEN j.status IN ('PENDING', 'RUNNING') THEN j.estimated_cost_micros ELSE 0 END,
    sign * (NOT (j.status = 'CANCELLED' AND j.started_at IS NULL))::int,
    sign * CASE WHEN j.completed_at IS NOT NULL AND j.started_at IS NOT NULL THEN extract(epoch FROM j.completed_at - j.started_at)::float8 ELSE 0 END,
    sign * (j.completed_at IS NOT NULL AND j.started_at IS NOT NULL)::int)::simbatch_job_delta
$$;

-- Applies a statement's contributions: batches, then user counters, then the
-- usage rollup, each in key order (so concurrent statements lock in one order).
CREATE FUNCTION simbatch_apply_job_deltas(deltas simbatch_job_delta[], inserted BOOLEAN) RETURNS void LANGUAGE plpgsql AS $$
DECLARE r RECORD;
BEGIN
  FOR r IN
    SELECT d.batch_id, sum(d.waiting)::int AS waiting, sum(d.active)::int AS active, sum(d.completed)::int AS completed,
      sum(d.failed)::int AS failed, sum(d.cancelled)::int AS cancelled, sum(d.charged)::bigint AS charged,
      sum(d.tokens)::bigint AS tokens, sum(d.active_estimate)::bigint AS active_estimate
    FROM unnest(deltas) d WHERE d.batch_id IS NOT NULL GROUP BY d.batch_id ORDER BY d.batch_id
  LOOP
    IF r.waiting <> 0 OR r.active <> 0 OR r.completed <> 0 OR r.failed <> 0 OR r.cancelled <> 0 OR r.charged <> 0 OR r.tokens <> 0 OR r.active_estimate <> 0 THEN
      UPDATE batches SET waiting_jobs = waiting_jobs + r.waiting, active_jobs = active_jobs + r.active,
        completed_jobs = completed_jobs + r.completed, failed_jobs = failed_jobs + r.failed, cancelled_jobs = cancelled_jobs + r.cancelled,
        charged_micros = charged_micros + r.charged, charged_tokens = charged_tokens + r.tokens,
        active_estimate_micros = active_estimate_micros + r.active_estimate
      WHERE id = r.batch_id;
    END IF;
  END LOOP;

  FOR r IN
    SELECT d.owner_id, sum(d.waiting)::int AS waiting, sum(d.active)::int AS active, sum(d.unfinished_single)::int AS unfinished_single,
      sum(d.unfinished_estimate)::bigint AS unfinished_estimate, max(d.released_at) FILTER (WHERE d.active > 0) AS released,
      (CASE WHEN inserted THEN count(*) ELSE 0 END)::bigint AS total, sum(d.unfinished)::bigint AS unfinished,
      sum(d.completed)::bigint AS completed, sum(d.failed)::bigint AS failed, sum(d.cancelled)::bigint AS cancelled,
      sum(d.charged)::bigint AS charged, sum(d.tokens)::bigint AS tokens,
      sum(CASE WHEN d.batch_id IS NOT NULL THEN d.charged ELSE 0 END)::bigint AS batch_charged,
      sum(CASE WHEN d.batch_id IS NOT NULL THEN d.tokens ELSE 0 END)::bigint AS batch_tokens,
      sum(d.duration_s)::float8 AS duration_s, sum(d.timed)::bigint AS timed
    FROM unnest(deltas) d GROUP BY d.owner_id ORDER BY d.owner_id
  LOOP
    IF r.waiting <> 0 OR r.active <> 0 OR r.unfinished_single <> 0 OR r.unfinished_estimate <> 0 OR r.released IS NOT NULL OR r.total <> 0
       OR r.unfinished <> 0 OR r.completed <> 0 OR r.failed <> 0 OR r.cancelled <> 0 OR r.charged <> 0 OR r.tokens <> 0 OR r.timed <> 0 THEN
      INSERT INTO user_counters AS c (user_id, waiting_jobs, active_jobs, unfinished_single_jobs, unfinished_estimate_micros, last_released_at,
        jobs_total, jobs_unfinished, jobs_completed, jobs_failed, jobs_cancelled, charged_micros, charged_tokens,
        batch_charged_micros, batch_charged_tokens, duration_seconds_sum, duration_count)
      VALUES (r.owner_id, r.waiting, r.active, r.unfinished_single, r.unfinished_estimate, r.released,
        r.total, r.unfinished, r.completed, r.failed, r.cancelled, r.charged, r.tokens, r.batch_charged, r.batch_tokens, r.duration_s, r.timed)
      ON CONFLICT (user_id) DO UPDATE SET
        waiting_jobs = c.waiting_jobs + r.waiting, active_jobs = c.active_jobs + r.active,
        unfinished_single_jobs = c.unfinished_single_jobs + r.unfinished_single,
        unfinished_estimate_micros = c.unfinished_estimate_micros + r.unfinished_estimate,
        last_released_at = GREATEST(c.last_released_at, r.released),
        jobs_total = c.jobs_total + r.total, jobs_unfinished = c.jobs_unfinished + r.unfinished,
        jobs_completed = c.jobs_completed + r.completed, jobs_failed = c.jobs_failed + r.failed, jobs_cancelled = c.jobs_cancelled + r.cancelled,
        charged_micros = c.charged_micros + r.charged, charged_tokens = c.charged_tokens + r.tokens,
        batch_charged_micros = c.batch_charged_micros + r.batch_charged, batch_charged_tokens = c.batch_charged_tokens + r.batch_tokens,
        duration_seconds_sum = c.duration_seconds_sum + r.duration_s, duration_count = c.duration_count + r.timed;
    END IF;
  END LOOP;

  FOR r IN
    SELECT x.owner_id, x.period, sum(x.counted)::bigint AS counted, sum(x.completed)::bigint AS completed, sum(x.failed)::bigint AS failed FROM (
      SELECT d.owner_id, d.admitted_period AS period, d.counted, 0 AS completed, 0 AS failed FROM unnest(deltas) d
      UNION ALL
      SELECT d.owner_id, d.ended_period, 0, d.completed, d.failed FROM unnest(deltas) d WHERE d.ended_period IS NOT NULL
    ) x GROUP BY x.owner_id, x.period ORDER BY x.owner_id, x.period
  LOOP
    IF r.counted <> 0 OR r.completed <> 0 OR r.failed <> 0 THEN
      INSERT INTO usage_periods AS u (user_id, period, simulations, completed, failed, updated_at)
      VALUES (r.owner_id, r.period, r.counted, r.completed, r.failed, now())
      ON CONFLICT (user_id, period) DO UPDATE SET simulations = u.simulations + r.counted,
        completed = u.completed + r.completed, failed = u.failed + r.failed, updated_at = now();
    END IF;
  END LOOP;
END $$;

CREATE FUNCTION simbatch_jobs_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM simbatch_apply_job_deltas(ARRAY(SELECT simbatch_job_contrib(n, 1) FROM new_rows n), true);
  RETURN NULL;
END $$;

CREATE FUNCTION simbatch_jobs_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Progress updates of running jobs change nothing counted: leave at once.
  IF NOT EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
                 WHERE n.status <> o.status OR n.released_at IS DISTINCT FROM o.released_at) THEN
    RETURN NULL;
  END IF;
  PERFORM simbatch_apply_job_deltas(ARRAY(
    SELECT simbatch_job_contrib(n, 1) FROM new_rows n UNION ALL SELECT simbatch_job_contrib(o, -1) FROM old_rows o), false);
  RETURN NULL;
END $$;

-- Every change to what a job counts for changes its status or released_at
-- (cost, tokens and timestamps of an ended job change only with its status), so
-- a statement that changes neither (progress of running jobs) is skipped.
CREATE TRIGGER simulation_jobs_counters_insert AFTER INSERT ON simulation_jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION simbatch_jobs_after_insert();
CREATE TRIGGER simulation_jobs_counters_update AFTER UPDATE ON simulation_jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION simbatch_jobs_after_update();

-- Ledger rows (charges and adjustments) roll up into their period.
CREATE FUNCTION simbatch_ledger_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r RECORD;
BEGIN
  FOR r IN
    SELECT user_id, period, sum(cost_micros)::bigint AS cost, sum(tokens)::bigint AS tokens,
      sum(api_calls)::bigint AS api_calls, sum(simulations)::bigint AS sims
    FROM new_rows GROUP BY user_id, period ORDER BY user_id, period
  LOOP
    INSERT INTO usage_periods AS u (user_id, period, cost_micros, tokens, ledger_api_calls, simulations, updated_at)
    VALUES (r.user_id, r.period, r.cost, r.tokens, r.api_calls, r.sims, now())
    ON CONFLICT (user_id, period) DO UPDATE SET cost_micros = u.cost_micros + r.cost, tokens = u.tokens + r.tokens,
      ledger_api_calls = u.ledger_api_calls + r.api_calls, simulations = u.simulations + r.sims, updated_at = now();
  END LOOP;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_entries_rollup AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION simbatch_ledger_after_insert();

-- Backfill from the rows already there.
UPDATE batches b SET job_ids = s.ids, waiting_jobs = s.waiting, active_jobs = s.active, completed_jobs = s.completed,
  failed_jobs = s.failed, cancelled_jobs = s.cancelled, charged_micros = s.charged, charged_tokens = s.tokens, active_estimate_micros = s.active_estimate
FROM (
  SELECT j.batch_id, array_agg(j.id ORDER BY j.batch_index) AS ids, sum(c.waiting) AS waiting, sum(c.active) AS active,
    sum(c.completed) AS completed, sum(c.failed) AS failed, sum(c.cancelled) AS cancelled, sum(c.charged) AS charged,
    sum(c.tokens) AS tokens, sum(c.active_estimate) AS active_estimate
  FROM simulation_jobs j, LATERAL (SELECT (simbatch_job_contrib(j, 1)).*) c WHERE j.batch_id IS NOT NULL GROUP BY j.batch_id
) s WHERE b.id = s.batch_id;

INSERT INTO user_counters (user_id, waiting_jobs, active_jobs, unfinished_single_jobs, unfinished_estimate_micros, last_released_at,
  jobs_total, jobs_unfinished, jobs_completed, jobs_failed, jobs_cancelled, charged_micros, charged_tokens,
  batch_charged_micros, batch_charged_tokens, duration_seconds_sum, duration_count)
SELECT j.owner_id, sum(c.waiting), sum(c.active), sum(c.unfinished_single), sum(c.unfinished_estimate), max(j.released_at),
  count(*), sum(c.unfinished), sum(c.completed), sum(c.failed), sum(c.cancelled), sum(c.charged), sum(c.tokens),
  sum(CASE WHEN j.batch_id IS NOT NULL THEN c.charged ELSE 0 END), sum(CASE WHEN j.batch_id IS NOT NULL THEN c.tokens ELSE 0 END),
  sum(c.duration_s), sum(c.timed)
FROM simulation_jobs j, LATERAL (SELECT (simbatch_job_contrib(j, 1)).*) c GROUP BY j.owner_id;

INSERT INTO usage_periods AS u (user_id, period, simulations, completed, failed, updated_at)
SELECT owner_id, period, sum(counted), sum(completed), sum(failed), now() FROM (
  SELECT j.owner_id, j.admitted_period AS period, c.counted, 0 AS completed, 0 AS failed FROM simulation_jobs j, LATERAL (SELECT (simbatch_job_contrib(j, 1)).*) c
  UNION ALL
  SELECT j.owner_id, c.ended_period, 0, c.completed, c.failed FROM simulation_jobs j, LATERAL (SELECT (simbatch_job_contrib(j, 1)).*) c WHERE c.ended_period IS NOT NULL
) x GROUP BY owner_id, period
ON CONFLICT (user_id, period) DO UPDATE SET simulations = EXCLUDED.simulations, completed = EXCLUDED.completed, failed = EXCLUDED.failed;

INSERT INTO usage_periods AS u (user_id, period, cost_micros, tokens, ledger_api_calls, simulations, updated_at)
SELECT user_id, period, sum(cost_micros), sum(tokens), sum(api_calls), sum(simulations), now() FROM ledger_entries GROUP BY user_id, period
ON CONFLICT (user_id, period) DO UPDATE SET cost_micros = EXCLUDED.cost_micros, tokens = EXCLUDED.tokens,
  ledger_api_calls = EXCLUDED.ledger_api_calls, simulations = u.simulations + EXCLUDED.simulations;

-- Indexes for the hot paths: each reads what it needs, not a user's history.
-- Dispatch: batches with waiting work, per owner in priority order.
CREATE INDEX "batches_dispatch_idx" ON "batches" ("owner_id", "priority" DESC, "created_at")
  WHERE "waiting_jobs" > 0 AND "stop_reason" IS NULL AND "status" IN ('PENDING', 'RUNNING');
-- Unfinished batches (sweep, operations).
CREATE INDEX "batches_open_idx" ON "batches" ("created_at") WHERE "completed_at" IS NULL;
-- Waiting jobs of a batch in request order; waiting single jobs in age order.
CREATE INDEX "simulation_jobs_waiting_idx" ON "simulation_jobs" ("batch_id", "batch_index")
  WHERE "status" = 'PENDING' AND "released_at" IS NULL;
CREATE INDEX "simulation_jobs_waiting_single_idx" ON "simulation_jobs" ("owner_id", "created_at")
  WHERE "batch_id" IS NULL AND "status" = 'PENDING' AND "released_at" IS NULL;
-- Jobs released or running: the fleet's busy slots, the sweep's in-flight scan.
CREATE INDEX "simulation_jobs_active_idx" ON "simulation_jobs" ("created_at")
  WHERE "status" = 'RUNNING' OR ("status" = 'PENDING' AND "released_at" IS NOT NULL);
-- Running jobs of a batch (views, a capped batch's spending so far).
CREATE INDEX "simulation_jobs_running_batch_idx" ON "simulation_jobs" ("batch_id") WHERE "status" = 'RUNNING';
-- List routes: a user's jobs or batches by status, newest first.
CREATE INDEX "simulation_jobs_owner_status_created_idx" ON "simulation_jobs" ("owner_id", "status", "created_at" DESC, "id" DESC);
CREATE INDEX "batches_owner_status_created_idx" ON "batches" ("owner_id", "status", "created_at" DESC, "id" DESC);
-- Replaced by the partial indexes and counters above (each index is written on every status change).
DROP INDEX IF EXISTS "simulation_jobs_status_released_at_idx";
DROP INDEX IF EXISTS "simulation_jobs_owner_id_released_at_idx";
DROP INDEX IF EXISTS "simulation_jobs_owner_id_admitted_period_idx";
DROP INDEX IF EXISTS "simulation_jobs_owner_id_status_idx";
DROP INDEX IF EXISTS "batches_owner_id_status_idx";
DROP INDEX IF EXISTS "batches_status_idx";
