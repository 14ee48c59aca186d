-- Admission without hot rows (issue 8). Admitting jobs used to add to the
-- user's row in user_counters and usage_periods, rows that every release and
-- every job end also update: concurrent admissions of one user queued behind
-- the reconciler's and dispatcher's transactions, and behind each other.
--
-- What an INSERT of jobs adds now goes to shard rows picked by the inserting
-- backend (pg_backend_pid() % 8), rows that only admissions write; later changes
-- (release, end, cancel) still go to user_counters / usage_periods, which may
-- therefore hold negative offsets for these columns. A user's figure is the
-- sum of the two (at most 8 shard rows). Everything else an insert could count
-- (jobs inserted already ended: imports, tests) still goes to the old rows.

CREATE TABLE "user_admissions" (
  "user_id" TEXT NOT NULL,
  "shard" SMALLINT NOT NULL,
  "jobs_total" BIGINT NOT NULL DEFAULT 0,
  "waiting_jobs" BIGINT NOT NULL DEFAULT 0,
  "unfinished_jobs" BIGINT NOT NULL DEFAULT 0,
  "unfinished_single_jobs" BIGINT NOT NULL DEFAULT 0,
  "unfinished_estimate_micros" BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY ("user_id", "shard")
);

CREATE TABLE "usage_admissions" (
  "user_id" TEXT NOT NULL,
  "period" TEXT NOT NULL,
  "shard" SMALLINT NOT NULL,
  "simulations" BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY ("user_id", "period", "shard")
);

-- With inserted = true (an INSERT of jobs), what admission adds is left to the
-- shard rows: user_counters and usage_periods get only what else the rows count.
CREATE OR REPLACE FUNCTION simbatch_apply_job_deltas(deltas simbatch_job_delta[], inserted BOOLEAN) RETURNS void LANGUAGE plpgsql AS $$
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
    SELECT d.owner_id, (CASE WHEN inserted THEN 0 ELSE sum(d.waiting) END)::int AS waiting, sum(d.active)::int AS active,
      (CASE WHEN inserted THEN 0 ELSE sum(d.unfinished_single) END)::int AS unfinished_single,
      (CASE WHEN inserted THEN 0 ELSE sum(d.unfinished_estimate) END)::bigint AS unfinished_estimate,
      max(d.released_at) FILTER (WHERE d.active > 0) AS released,
      0::bigint AS total, (CASE WHEN inserted THEN 0 ELSE sum(d.unfinished) END)::bigint AS unfinished,
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
      SELECT d.owner_id, d.admitted_period AS period, CASE WHEN inserted THEN 0 ELSE d.counted END, 0 AS completed, 0 AS failed FROM unnest(deltas) d
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

CREATE OR REPLACE FUNCTION simbatch_jobs_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  deltas simbatch_job_delta[];
  my_shard SMALLINT := (pg_backend_pid() % 8)::smallint;
  r RECORD;
BEGIN
  deltas := ARRAY(SELECT simbatch_job_contrib(n, 1) FROM new_rows n);
  -- What admission adds: to this backend's shard rows.
  FOR r IN
    SELECT d.owner_id, count(*)::bigint AS total, sum(d.waiting)::bigint AS waiting, sum(d.unfinished)::bigint AS unfinished,
      sum(d.unfinished_single)::bigint AS single, sum(d.unfinished_estimate)::bigint AS estimate
    FROM unnest(deltas) d GROUP BY d.owner_id ORDER BY d.owner_id
  LOOP
    INSERT INTO user_admissions AS a (user_id, shard, jobs_total, waiting_jobs, unfinished_jobs, unfinished_single_jobs, unfinished_estimate_micros)
    VALUES (r.owner_id, my_shard, r.total, r.waiting, r.unfinished, r.single, r.estimate)
    ON CONFLICT (user_id, shard) DO UPDATE SET jobs_total = a.jobs_total + r.total, waiting_jobs = a.waiting_jobs + r.waiting,
      unfinished_jobs = a.unfinished_jobs + r.unfinished, unfinished_single_jobs = a.unfinished_single_jobs + r.single,
      unfinished_estimate_micros = a.unfinished_estimate_micros + r.estimate;
  END LOOP;
  FOR r IN
    SELECT d.owner_id, d.admitted_period AS period, sum(d.counted)::bigint AS counted
    FROM unnest(deltas) d GROUP BY d.owner_id, d.admitted_period ORDER BY d.owner_id, d.admitted_period
  LOOP
    IF r.counted <> 0 THEN
      INSERT INTO usage_admissions AS a (user_id, period, shard, simulations) VALUES (r.owner_id, r.period, my_shard, r.counted)
      ON CONFLICT (user_id, period, shard) DO UPDATE SET simulations = a.simulations + r.counted;
    END IF;
  END LOOP;
  -- The rest: batch counters, and what rows inserted already running or ended count for.
  PERFORM simbatch_apply_job_deltas(deltas, true);
  RETURN NULL;
END $$;

-- Move the totals kept so far to shard 0, leaving user_counters and
-- usage_periods with the offsets only (zero for what was summed there).
INSERT INTO user_admissions (user_id, shard, jobs_total, waiting_jobs, unfinished_jobs, unfinished_single_jobs, unfinished_estimate_micros)
SELECT user_id, 0, jobs_total, waiting_jobs, jobs_unfinished, unfinished_single_jobs, unfinished_estimate_micros FROM user_counters;
UPDATE user_counters SET jobs_total = 0, waiting_jobs = 0, jobs_unfinished = 0, unfinished_single_jobs = 0, unfinished_estimate_micros = 0;

INSERT INTO usage_admissions (user_id, period, shard, simulations)
SELECT user_id, period, 0, simulations FROM usage_periods WHERE simulations <> 0;
UPDATE usage_periods SET simulations = 0 WHERE simulations <> 0;

-- Dispatch finds the users with waiting work from the batches and single jobs that wait.
DROP INDEX IF EXISTS "user_counters_waiting_idx";

-- What readers use: a user's counters and a period's usage with the shard rows summed in.
CREATE VIEW user_totals AS
SELECT u.id AS user_id,
  (COALESCE(c.waiting_jobs, 0) + COALESCE(a.waiting_jobs, 0))::int AS waiting_jobs,
  COALESCE(c.active_jobs, 0) AS active_jobs,
  (COALESCE(c.unfinished_single_jobs, 0) + COALESCE(a.unfinished_single_jobs, 0))::int AS unfinished_single_jobs,
  (COALESCE(c.unfinished_estimate_micros, 0) + COALESCE(a.unfinished_estimate_micros, 0))::bigint AS unfinished_estimate_micros,
  c.last_released_at,
  (COALESCE(c.jobs_total, 0) + COALESCE(a.jobs_total, 0))::bigint AS jobs_total,
  (COALESCE(c.jobs_unfinished, 0) + COALESCE(a.unfinished_jobs, 0))::bigint AS jobs_unfinished,
  COALESCE(c.jobs_completed, 0) AS jobs_completed, COALESCE(c.jobs_failed, 0) AS jobs_failed, COALESCE(c.jobs_cancelled, 0) AS jobs_cancelled,
  COALESCE(c.charged_micros, 0) AS charged_micros, COALESCE(c.charged_tokens, 0) AS charged_tokens,
  COALESCE(c.batch_charged_micros, 0) AS batch_charged_micros, COALESCE(c.batch_charged_tokens, 0) AS batch_charged_tokens,
  COALESCE(c.duration_seconds_sum, 0) AS duration_seconds_sum, COALESCE(c.duration_count, 0) AS duration_count
FROM users u
LEFT JOIN user_counters c ON c.user_id = u.id
LEFT JOIN LATERAL (
  SELECT sum(x.jobs_total) AS jobs_total, sum(x.waiting_jobs) AS waiting_jobs, sum(x.unfinished_jobs) AS unfinished_jobs,
    sum(x.unfinished_single_jobs) AS unfinished_single_jobs, sum(x.unfinished_estimate_micros) AS unfinished_estimate_micros
  FROM user_admissions x WHERE x.user_id = u.id
) a ON true;

CREATE VIEW usage_totals AS
SELECT k.user_id, k.period,
  COALESCE(p.api_calls, 0) AS api_calls, COALESCE(p.ledger_api_calls, 0) AS ledger_api_calls,
  (COALESCE(p.simulations, 0) + COALESCE(a.simulations, 0))::bigint AS simulations,
  COALESCE(p.cost_micros, 0) AS cost_micros, COALESCE(p.tokens, 0) AS tokens,
  COALESCE(p.completed, 0) AS completed, COALESCE(p.failed, 0) AS failed
FROM (SELECT user_id, period FROM usage_periods UNION SELECT user_id, period FROM usage_admissions) k
LEFT JOIN usage_periods p ON p.user_id = k.user_id AND p.period = k.period
LEFT JOIN LATERAL (
  SELECT sum(x.simulations) AS simulations FROM usage_admissions x WHERE x.user_id = k.user_id AND x.period = k.period
) a ON true;
