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
