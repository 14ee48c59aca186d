import { Client } from "pg";
import { counterDrift } from "../support/invariants.ts";
import { Stack, scripted } from "../support/stack.ts";

/**
 * The counters' update trigger takes a short path for a statement of releases only
 * (migration 20261201160000_release_trigger_fast_path) and the generic per-row path
 * for anything else. Either way every counter must equal what the job rows say.
 */
describe("counter triggers: releases and mixed statements", () => {
  // No workers: jobs move only when a test moves them.
  const stack = new Stack({ workers: [] });
  let sql: Client;
  let key: string;
  let owner: string;

  beforeAll(async () => {
    await stack.start();
    const u = await stack.env.user("counted", "enterprise");
    key = u.key;
    owner = u.id;
    sql = new Client({ connectionString: stack.env.databaseUrl });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await stack.stop();
  });

  const noDrift = { batches: [], user_counters: [], usage_periods: [] };

  async function batchOf(n: number): Promise<string[]> {
    const res = await stack.submitBatch(key, { simulations: Array.from({ length: n }, () => scripted({ steps: 1 })), parallel_jobs: n });
    expect(res.status).toBe(202);
    return res.body.job_ids as string[];
  }

  const counters = async () =>
    (await sql.query(`SELECT waiting_jobs, active_jobs, last_released_at FROM user_totals WHERE user_id = $1`, [owner])).rows[0] as {
      waiting_jobs: number;
      active_jobs: number;
      last_released_at: Date | null;
    };

  it("counts a release of jobs from several batches, with its time as the latest release", async () => {
    const a = await batchOf(4);
    const b = await batchOf(3);
    const before = await counters();
    await sql.query(`UPDATE simulation_jobs SET released_at = '2030-01-02 03:04:05' WHERE id = ANY($1::text[])`, [[...a.slice(0, 3), ...b.slice(0, 2)]]);
    const after = await counters();
    expect(after.waiting_jobs).toBe(before.waiting_jobs - 5);
    expect(after.active_jobs).toBe(before.active_jobs + 5);
    expect(after.last_released_at?.toISOString()).toMatch(/^2030-01-02T03:04:05/);
    const perBatch = await sql.query(
      `SELECT waiting_jobs, active_jobs, active_estimate_micros::bigint = (SELECT sum(estimated_cost_micros) FROM simulation_jobs j
         WHERE j.batch_id = b.id AND j.released_at IS NOT NULL) AS estimate_ok
       FROM batches b WHERE b.id IN (SELECT batch_id FROM simulation_jobs WHERE id = ANY($1::text[])) ORDER BY total_jobs DESC`,
      [[a[0], b[0]]],
    );
    expect(perBatch.rows).toEqual([
      { waiting_jobs: 1, active_jobs: 3, estimate_ok: true },
      { waiting_jobs: 1, active_jobs: 2, estimate_ok: true },
    ]);
    expect(await counterDrift(sql)).toEqual(noDrift);
  });

  it("counts ends of running jobs: end status, charges, durations and the period each ended in", async () => {
    const jobs = await batchOf(5);
    const single = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", key)
      .send(scripted({ steps: 1 }));
    expect(single.status).toBe(202);
    const all = [...jobs, single.body.job_id as string];
    await sql.query(`UPDATE simulation_jobs SET released_at = now() WHERE id = ANY($1::text[])`, [all]);
    await sql.query(`UPDATE simulation_jobs SET status = 'RUNNING', attempts = 1, started_at = now() - interval '2.5 seconds' WHERE id = ANY($1::text[])`, [
      all,
    ]);
    expect(await counterDrift(sql)).toEqual(noDrift);
    const before = (await sql.query(`SELECT * FROM user_totals WHERE user_id = $1`, [owner])).rows[0];
    // One job completes first (its period's usage row is made), then one statement ends the rest:
    // a completion at the turn of a month, a failure, two cancels and the single job.
    await sql.query(`UPDATE simulation_jobs SET status = 'COMPLETED', completed_at = now(), cost_micros = 5, tokens_used = 1 WHERE id = $1`, [jobs[0]]);
    expect(await counterDrift(sql)).toEqual(noDrift);
    await sql.query(
      `UPDATE simulation_jobs SET status = (CASE WHEN id = ANY($2::text[]) THEN 'COMPLETED' WHEN id = $3 THEN 'FAILED' ELSE 'CANCELLED' END)::"JobStatus",
         completed_at = CASE WHEN id = $4 THEN date_trunc('month', now()) + interval '1 month' ELSE now() END,
         cost_micros = 1000 + coalesce(batch_index, 9), tokens_used = 10 + coalesce(batch_index, 0)
       WHERE id = ANY($1::text[])`,
      [all.slice(1), [jobs[1], all[5]], jobs[2], jobs[1]],
    );
    expect(await counterDrift(sql)).toEqual(noDrift);
    const after = (await sql.query(`SELECT * FROM user_totals WHERE user_id = $1`, [owner])).rows[0];
    expect(Number(after.jobs_completed) - Number(before.jobs_completed)).toBe(3);
    expect(Number(after.jobs_failed) - Number(before.jobs_failed)).toBe(1);
    expect(Number(after.jobs_cancelled) - Number(before.jobs_cancelled)).toBe(2);
    expect(after.active_jobs - before.active_jobs).toBe(-6);
    expect(Number(after.duration_count) - Number(before.duration_count)).toBe(6);
  });

  it("keeps the counters exact when a statement mixes releases with other changes", async () => {
    const jobs = await batchOf(6);
    // Releases beside a cancel of a waiting job.
    await sql.query(
      `UPDATE simulation_jobs SET released_at = CASE WHEN id = $2 THEN NULL ELSE now() END,
         status = CASE WHEN id = $2 THEN 'CANCELLED'::"JobStatus" ELSE status END, completed_at = CASE WHEN id = $2 THEN now() END
       WHERE id = ANY($1::text[])`,
      [jobs.slice(0, 3), jobs[2]],
    );
    expect(await counterDrift(sql)).toEqual(noDrift);
    // A release that also changes the job's estimate.
    await sql.query(`UPDATE simulation_jobs SET released_at = now(), estimated_cost_micros = estimated_cost_micros + 7 WHERE id = $1`, [jobs[3]]);
    expect(await counterDrift(sql)).toEqual(noDrift);
    // A release beside a row that changes nothing counted, and one back to waiting.
    await sql.query(
      `UPDATE simulation_jobs SET released_at = CASE WHEN id = $2 THEN now() WHEN id = $3 THEN NULL ELSE released_at END, current_step = 'x'
       WHERE id = ANY($1::text[])`,
      [[jobs[4], jobs[5], jobs[0]], jobs[4], jobs[0]],
    );
    expect(await counterDrift(sql)).toEqual(noDrift);
    const rows = await sql.query(
      `SELECT id, status, released_at IS NOT NULL AS released FROM simulation_jobs WHERE id = ANY($1::text[]) ORDER BY batch_index`,
      [jobs],
    );
    expect(rows.rows.map((r) => `${r.status}:${r.released}`)).toEqual([
      "PENDING:false",
      "PENDING:true",
      "CANCELLED:false",
      "PENDING:true",
      "PENDING:true",
      "PENDING:false",
    ]);
  });
});
