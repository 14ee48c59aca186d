-- A claim (a released job starting, or a running job's new attempt) changes nothing any
-- counter counts: the job stays active, unfinished and counted. The update trigger's early
-- exit looked only at status and released_at, so every claim statement went on to
-- aggregate its deltas and, because a claimed row still carries its release time, wrote
-- `last_released_at = GREATEST(...)` to the owner's user_counters row: a no-op that took
-- that row's lock, the one every release and every job end of the user also takes
-- (pg_stat_statements under `npm run bench`: the claim statement averaged 6.9 ms, most of
-- it waiting for that lock). The exit now compares what a row counts as: waiting,
-- active (released or running), or its end status (a STABLE function, like
-- simbatch_job_contrib, so that Postgres inlines it: the enum-to-text cast is not IMMUTABLE).
CREATE OR REPLACE FUNCTION simbatch_job_state_class(status "JobStatus", released_at TIMESTAMP(3))
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN status = 'PENDING' AND released_at IS NULL THEN 'waiting'
              WHEN status IN ('PENDING', 'RUNNING') THEN 'active'
              ELSE status::text END
$$;

CREATE OR REPLACE FUNCTION simbatch_jobs_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Progress updates and claims change nothing counted: leave at once.
  IF NOT EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
                 WHERE simbatch_job_state_class(n.status, n.released_at) <> simbatch_job_state_class(o.status, o.released_at)) THEN
    RETURN NULL;
  END IF;
  PERFORM simbatch_apply_job_deltas(ARRAY(
    SELECT simbatch_job_contrib(n, 1) FROM new_rows n UNION ALL SELECT simbatch_job_contrib(o, -1) FROM old_rows o), false);
  RETURN NULL;
END $$;
