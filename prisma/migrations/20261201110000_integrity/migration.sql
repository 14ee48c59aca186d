-- Referential integrity and what must never be stored (issue 9, item 11).
--
-- Each constraint is added NOT VALID (no scan, only a brief lock; new writes are
-- checked at once) and then validated, which scans without blocking writes.
--
-- ON DELETE:
-- * RESTRICT for everything that is money or its history: users, batches and
--   jobs cannot be deleted while jobs, batches or ledger rows point at them (the
--   service never deletes them; an operator who tries is stopped instead of
--   silently orphaning charges or usage).
-- * CASCADE for what is derived from a job and has no meaning without it:
--   its result, its exports, its attempts' recorded outcomes.

-- Rows no valid history can hold would fail VALIDATE; there are none by construction
-- (every writer inserts the user first, batch and jobs together, charges with their job).

ALTER TABLE "batches" ADD CONSTRAINT "batches_owner_id_fkey"
  FOREIGN KEY ("owner_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "simulation_jobs" ADD CONSTRAINT "simulation_jobs_owner_id_fkey"
  FOREIGN KEY ("owner_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "simulation_jobs" ADD CONSTRAINT "simulation_jobs_batch_id_fkey"
  FOREIGN KEY ("batch_id") REFERENCES "batches"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "simulation_results" ADD CONSTRAINT "simulation_results_job_id_fkey"
  FOREIGN KEY ("job_id") REFERENCES "simulation_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE NOT VALID;
ALTER TABLE "simulation_exports" ADD CONSTRAINT "simulation_exports_job_id_fkey"
  FOREIGN KEY ("job_id") REFERENCES "simulation_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE NOT VALID;
ALTER TABLE "job_attempt_outcomes" ADD CONSTRAINT "job_attempt_outcomes_job_id_fkey"
  FOREIGN KEY ("job_id") REFERENCES "simulation_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE NOT VALID;
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_user_id_fkey"
  FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_job_id_fkey"
  FOREIGN KEY ("job_id") REFERENCES "simulation_jobs"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_batch_id_fkey"
  FOREIGN KEY ("batch_id") REFERENCES "batches"("id") ON DELETE RESTRICT ON UPDATE CASCADE NOT VALID;

-- What must never be stored. Adjustments may be negative (credits); charges,
-- spending, estimates and caps never are.
ALTER TABLE "simulation_jobs" ADD CONSTRAINT "simulation_jobs_amounts_check" CHECK (
  "cost_micros" >= 0 AND "tokens_used" >= 0 AND "estimated_cost_micros" >= 0
  AND "carried_cost_micros" >= 0 AND "carried_tokens" >= 0
  AND "carried_cost_micros" <= "cost_micros" AND "carried_tokens" <= "tokens_used") NOT VALID;
ALTER TABLE "simulation_jobs" ADD CONSTRAINT "simulation_jobs_progress_check" CHECK ("progress_percent" >= 0 AND "progress_percent" <= 100) NOT VALID;
ALTER TABLE "simulation_jobs" ADD CONSTRAINT "simulation_jobs_attempts_check" CHECK ("attempts" >= 0) NOT VALID;
ALTER TABLE "batches" ADD CONSTRAINT "batches_amounts_check" CHECK (
  "estimated_cost_micros" >= 0 AND ("budget_cap_micros" IS NULL OR "budget_cap_micros" >= 0)
  AND "charged_micros" >= 0 AND "charged_tokens" >= 0 AND "active_estimate_micros" >= 0) NOT VALID;
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_charge_check" CHECK (
  "kind" <> 'CHARGE' OR ("job_id" IS NOT NULL AND "attempt" IS NOT NULL AND "attempt" >= 1
    AND "cost_micros" >= 0 AND "tokens" >= 0 AND "api_calls" = 0 AND "simulations" = 0)) NOT VALID;
ALTER TABLE "job_attempt_outcomes" ADD CONSTRAINT "job_attempt_outcomes_check" CHECK (
  "attempt" >= 1 AND "cost_micros" >= 0 AND "tokens" >= 0 AND "status" IN ('COMPLETED', 'FAILED', 'CANCELLED')) NOT VALID;
ALTER TABLE "simulation_results" ADD CONSTRAINT "simulation_results_attempt_check" CHECK ("attempt" >= 1) NOT VALID;

ALTER TABLE "batches" VALIDATE CONSTRAINT "batches_owner_id_fkey";
ALTER TABLE "simulation_jobs" VALIDATE CONSTRAINT "simulation_jobs_owner_id_fkey";
ALTER TABLE "simulation_jobs" VALIDATE CONSTRAINT "simulation_jobs_batch_id_fkey";
ALTER TABLE "simulation_results" VALIDATE CONSTRAINT "simulation_results_job_id_fkey";
ALTER TABLE "simulation_exports" VALIDATE CONSTRAINT "simulation_exports_job_id_fkey";
ALTER TABLE "job_attempt_outcomes" VALIDATE CONSTRAINT "job_attempt_outcomes_job_id_fkey";
ALTER TABLE "ledger_entries" VALIDATE CONSTRAINT "ledger_entries_user_id_fkey";
ALTER TABLE "ledger_entries" VALIDATE CONSTRAINT "ledger_entries_job_id_fkey";
ALTER TABLE "ledger_entries" VALIDATE CONSTRAINT "ledger_entries_batch_id_fkey";
ALTER TABLE "simulation_jobs" VALIDATE CONSTRAINT "simulation_jobs_amounts_check";
ALTER TABLE "simulation_jobs" VALIDATE CONSTRAINT "simulation_jobs_progress_check";
ALTER TABLE "simulation_jobs" VALIDATE CONSTRAINT "simulation_jobs_attempts_check";
ALTER TABLE "batches" VALIDATE CONSTRAINT "batches_amounts_check";
ALTER TABLE "ledger_entries" VALIDATE CONSTRAINT "ledger_entries_charge_check";
ALTER TABLE "job_attempt_outcomes" VALIDATE CONSTRAINT "job_attempt_outcomes_check";
ALTER TABLE "simulation_results" VALIDATE CONSTRAINT "simulation_results_attempt_check";
