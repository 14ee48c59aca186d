-- Exactly-once runs under lag, bounded retries, every attempt charged (issue 9, items 1-3).
--
-- 1. Each attempt's outcome is recorded by its worker, guarded on the job still
--    RUNNING at that attempt, before the worker publishes the terminal event. A
--    claim refuses a job whose current attempt has an outcome (it finished: its
--    event may just be unapplied), and the sweep applies a recorded outcome
--    whose event never arrived instead of running the job again.
CREATE TABLE "job_attempt_outcomes" (
  "job_id" TEXT NOT NULL,
  "attempt" INTEGER NOT NULL,
  -- COMPLETED, FAILED or CANCELLED, as the terminal event says.
  "status" TEXT NOT NULL,
  -- The attempt's own spending (the job's cost is its carried spending plus this).
  "cost_micros" BIGINT NOT NULL DEFAULT 0,
  "tokens" BIGINT NOT NULL DEFAULT 0,
  "error_message" TEXT,
  "ended_at" TIMESTAMP(3) NOT NULL DEFAULT now(),
  CONSTRAINT "job_attempt_outcomes_pkey" PRIMARY KEY ("job_id", "attempt")
);

-- 3. Spending of superseded attempts: a claim that supersedes a crashed attempt
--    charges that attempt's last reported spending (a ledger row for that
--    (job, attempt)) and carries it here; the job's cost_micros is carried plus
--    the current attempt's spending, so cost_micros is the sum over attempts.
ALTER TABLE "simulation_jobs"
  ADD COLUMN "carried_cost_micros" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "carried_tokens" BIGINT NOT NULL DEFAULT 0;
