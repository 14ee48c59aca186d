import { Prisma } from "@simbatch/db";

/**
 * SQL predicates the domain repeats, written once.
 *
 * A job that holds a worker slot: released to BullMQ and not yet claimed, or
 * running. The partial index `simulation_jobs_active_idx` is defined on exactly
 * this predicate (and the counters' trigger counts `active` by it), so queries
 * using it read only the jobs in flight.
 */
export const activeJob = (alias?: "j"): Prisma.Sql => {
  const c = alias ? `${alias}.` : "";
  return Prisma.raw(`(${c}status = 'RUNNING' OR (${c}status = 'PENDING' AND ${c}released_at IS NOT NULL))`);
};

/*
 * The same states, for statements that look rows up by id. Written as a CASE, the
 * predicate proves nothing about the partial indexes above, so the planner reads
 * the primary key instead of scanning a partial index it believes small: measured
 * with auto_explain under `npm run bench`, a 20-job claim spent 4.6 of its 6.3 ms
 * in a bitmap scan of 7,000 in-flight entries of `simulation_jobs_active_idx`,
 * and a 31-job release 4.9 ms reading the 10,000-job backlog's waiting index.
 */

/** A job that holds a worker slot (see activeJob), for lookups by id. */
export const activeById = (alias: "j"): Prisma.Sql =>
  Prisma.raw(`(CASE ${alias}.status WHEN 'RUNNING' THEN true WHEN 'PENDING' THEN ${alias}.released_at IS NOT NULL ELSE false END)`);

/** A job still waiting in Postgres (PENDING, not released), for lookups by id. */
export const waitingById: Prisma.Sql = Prisma.raw(`(CASE status WHEN 'PENDING' THEN released_at IS NULL ELSE false END)`);

/**
 * A job's spending from an attempt's report (`<src>.cost`, `<src>.tokens`): what its
 * superseded attempts were charged (carried) plus this attempt's, never lower than the
 * row already says (a report that arrives late never moves spending back).
 */
export const reportedSpending = (src: "v" | "l"): Prisma.Sql =>
  Prisma.raw(
    `cost_micros = GREATEST(j.cost_micros, j.carried_cost_micros + ${src}.cost), tokens_used = GREATEST(j.tokens_used, j.carried_tokens + ${src}.tokens)`,
  );

/** What an ended job row returns for its charge: the attempt's own part of its spending. */
export const attemptCharge: Prisma.Sql = Prisma.raw(`(j.cost_micros - j.carried_cost_micros) AS cost, (j.tokens_used - j.carried_tokens) AS tokens`);

/**
 * Charges the attempts a CTE named `ended` ended (its rows: owner_id, period, id,
 * batch_id, attempt, cost, tokens). The ledger is unique on (job, attempt), so a
 * replayed end charges nothing.
 */
export const chargeEnded: Prisma.Sql = Prisma.raw(`INSERT INTO ledger_entries (user_id, period, kind, job_id, batch_id, attempt, cost_micros, tokens)
      SELECT owner_id, period, 'CHARGE'::"LedgerKind", id, batch_id, attempt, cost, tokens FROM ended
      ON CONFLICT (job_id, attempt) DO NOTHING`);
