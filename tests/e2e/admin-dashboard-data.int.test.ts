import pg from "pg";
import { periodOf, redisKeys, RUN_SIMULATION_JOB, SIMULATIONS_QUEUE } from "@simbatch/contracts";
import { DASHBOARD_SQL, dashboardSnapshot } from "@simbatch/core";
import { Worker } from "@simbatch/queue";
import { TestEnv, waitFor } from "@simbatch/testing";

/**
 * The dashboard's figures against the raw rows, and its statements' plans on a
 * database with history (thousands of finished batches and jobs, a year of
 * usage rollups for two thousand users): every figure equals what a scan of the
 * rows says, and no statement scans the jobs, the batches or the rollup (the
 * waiting work, open batches and running jobs on their partial indexes, the
 * period's spend by one probe per user).
 */
const NOW = new Date();
const CUR = periodOf(NOW);
const USERS = 2_000;
const HISTORY_BATCHES = 3_000;
const HISTORY_JOBS = 20_000;
const PERIODS = 12;
const ts = (d: Date) => d.toISOString().replace("Z", "");

interface Scan {
  type: string;
  relation: string;
  index: string | null;
  read: number;
}

function scansOf(plan: Record<string, any>): Scan[] {
  const scans: Scan[] = [];
  const walk = (node: Record<string, any>) => {
    if (node["Relation Name"]) {
      const perLoop = Number(node["Actual Rows"] ?? 0) + Number(node["Rows Removed by Filter"] ?? 0) + Number(node["Rows Removed by Index Recheck"] ?? 0);
      scans.push({
        type: node["Node Type"],
        relation: node["Relation Name"],
        index: node["Index Name"] ?? null,
        read: Math.round(perLoop * Number(node["Actual Loops"] ?? 1)),
      });
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan.Plan);
  return scans;
}

describe("dashboard figures and plans", () => {
  const env = new TestEnv({ clock: { now: () => NOW } });
  let sql: pg.Client;
  let worker: Worker | undefined;
  let release: () => void = () => undefined;
  const one = async (text: string, values: unknown[] = []) => (await sql.query(text, values)).rows[0] as Record<string, any>;

  beforeAll(async () => {
    await env.setup();
    sql = new pg.Client({ connectionString: env.databaseUrl });
    await sql.connect();
    // Accounts with a year of usage rollups, a few with admissions this period.
    await sql.query(`INSERT INTO users (id, tier) SELECT 'u' || lpad(n::text, 5, '0'), 'pro' FROM generate_series(1, $1) n`, [USERS]);
    await sql.query(
      `INSERT INTO usage_periods (user_id, period, cost_micros, tokens, simulations, completed, failed, updated_at)
       SELECT 'u' || lpad(n::text, 5, '0'), to_char(($2 || '-01')::date - make_interval(months => m), 'YYYY-MM'),
         1000 * n + m, 10 * n, n % 7, n % 5, n % 3, now()
       FROM generate_series(1, $1) n, generate_series(0, $3 - 1) m`,
      [USERS, CUR, PERIODS],
    );
    await sql.query(
      `INSERT INTO usage_admissions (user_id, period, shard, simulations) SELECT 'u' || lpad(n::text, 5, '0'), $1, n % 8, 2 FROM generate_series(1, 40) n`,
      [CUR],
    );
    // History: finished batches and jobs (the counters' triggers run, as in production).
    await sql.query(
      `INSERT INTO batches (id, owner_id, status, priority, fail_fast, parallel_jobs, estimated_cost_micros, total_jobs, created_at, started_at, completed_at)
       SELECT 'batch_' || lpad(to_hex(n), 12, '0'), 'u' || lpad((n % $2 + 1)::text, 5, '0'), 'COMPLETED', 50, false, 5, 1000, 1,
         now() - interval '40 days', now() - interval '40 days', now() - interval '39 days'
       FROM generate_series(1, $1) n`,
      [HISTORY_BATCHES, USERS],
    );
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, status, entity_count, timepoint_count, temporal_mode, export_formats, estimated_cost_micros,
         cost_micros, admitted_period, created_at, started_at, completed_at)
       SELECT 'sim_' || lpad(to_hex(n), 12, '0'), 'u' || lpad((n % $2 + 1)::text, 5, '0'), 'COMPLETED', 1, 1, 'FORWARD', '{}', 500, 400, $3,
         now() - interval '40 days', now() - interval '40 days', now() - interval '39 days'
       FROM generate_series(1, $1) n`,
      [HISTORY_JOBS, USERS, CUR],
    );
    // Work in flight: two open batches (one with a job running), waiting single jobs at two priorities.
    await sql.query(
      `INSERT INTO batches (id, owner_id, status, priority, fail_fast, parallel_jobs, estimated_cost_micros, budget_cap_micros, total_jobs, job_ids, created_at)
       VALUES ('batch_f00000000001', 'u00001', 'PENDING', 80, false, 2, 3000, 2000000, 3,
               ARRAY['sim_f00000000011', 'sim_f00000000012', 'sim_f00000000013'], $1::timestamp - interval '90 seconds'),
              ('batch_f00000000002', 'u00002', 'PENDING', 20, false, 1, 2000, NULL, 2, ARRAY['sim_f00000000021', 'sim_f00000000022'], $1::timestamp - interval '30 seconds')`,
      [ts(NOW)],
    );
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, batch_id, batch_index, priority, entity_count, timepoint_count, temporal_mode, export_formats,
         estimated_cost_micros, admitted_period, created_at)
       SELECT j.id, b.owner_id, b.id, j.i, b.priority, 1, 1, 'FORWARD', '{}', 1000, $1, b.created_at
       FROM batches b CROSS JOIN LATERAL unnest(b.job_ids) WITH ORDINALITY AS j(id, i) WHERE b.completed_at IS NULL`,
      [CUR],
    );
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, priority, entity_count, timepoint_count, temporal_mode, export_formats, estimated_cost_micros, admitted_period, created_at)
       VALUES ('sim_e00000000001', 'u00003', 50, 1, 1, 'FORWARD', '{}', 1000, $1, $2::timestamp - interval '10 seconds'),
              ('sim_e00000000002', 'u00003', 50, 1, 1, 'FORWARD', '{}', 1000, $1, $2::timestamp - interval '5 seconds'),
              ('sim_e00000000003', 'u00001', 80, 1, 1, 'FORWARD', '{}', 1000, $1, $2::timestamp - interval '20 seconds')`,
      [CUR, ts(NOW)],
    );
    // The first job of the first batch runs, 40% through, having reported 0.30 USD; a superseded attempt was charged 0.10 USD.
    await sql.query(
      `UPDATE simulation_jobs SET released_at = $1::timestamp, status = 'RUNNING', attempts = 2, started_at = $1::timestamp,
         progress_percent = 40, cost_micros = 400000, carried_cost_micros = 100000 WHERE id = 'sim_f00000000011'`,
      [ts(NOW)],
    );
    await sql.query(
      `INSERT INTO ledger_entries (user_id, period, kind, job_id, batch_id, attempt, cost_micros) VALUES ('u00001', $1, 'CHARGE', 'sim_f00000000011', 'batch_f00000000001', 1, 100000)`,
      [CUR],
    );
    await sql.query(`UPDATE batches SET status = 'RUNNING', started_at = $1::timestamp WHERE id = 'batch_f00000000001'`, [ts(NOW)]);
    await sql.query("ANALYZE");
  }, 120_000);

  afterAll(async () => {
    release();
    await worker?.close();
    await sql?.end();
    await env.teardown();
  });

  it("equals what the raw rows say", async () => {
    const snap = await dashboardSnapshot(env.core);
    const raw = await sql.query(
      `SELECT owner_id AS user_id, priority, count(*)::int AS jobs FROM simulation_jobs WHERE status = 'PENDING' AND released_at IS NULL
       GROUP BY 1, 2 ORDER BY priority DESC, jobs DESC, user_id`,
    );
    expect(snap.waiting.by_user_priority.map(({ user_id, priority, jobs }) => ({ user_id, priority, jobs }))).toEqual(raw.rows);
    expect(snap.waiting.by_user_priority[0]).toEqual({ user_id: "u00001", priority: 80, jobs: 3, oldest_age_s: 90 });
    expect(snap.waiting.total).toBe(7);
    expect(snap.waiting.total).toBe(snap.operations.waiting_in_postgres);
    expect(snap.waiting.oldest_age_s).toBe(90);

    const byStatus = await sql.query(`SELECT status::text, count(*)::int AS n FROM batches WHERE completed_at IS NULL GROUP BY 1 ORDER BY 1`);
    expect(snap.batches.open_by_status).toEqual(Object.fromEntries(byStatus.rows.map((r) => [r.status, r.n])));
    expect(snap.batches.open_by_status).toEqual({ PENDING: 1, RUNNING: 1 });
    expect(snap.batches.open.map((b) => b.batch_id)).toEqual(["batch_f00000000001", "batch_f00000000002"]);
    expect(snap.batches.open[0]).toEqual({
      batch_id: "batch_f00000000001",
      user_id: "u00001",
      status: "RUNNING",
      priority: 80,
      total_jobs: 3,
      waiting: 2,
      released: 0,
      running: 1,
      completed: 0,
      failed: 0,
      cancelled: 0,
      // one job 40% through, of three
      progress_percent: 13.33,
      // nothing ended; the running job's spending so far: 0.10 for its superseded attempt + 0.30 this attempt reported
      cost_usd: 0.4,
      budget_cap_usd: 2,
      stop_reason: null,
      age_s: 90,
    });

    const spend = await one(
      `SELECT sum(cost_micros)::bigint AS cost, sum(tokens)::bigint AS tokens, sum(simulations)::bigint AS sims, sum(completed)::bigint AS completed,
         sum(failed)::bigint AS failed FROM usage_periods WHERE period = $1`,
      [CUR],
    );
    const admitted = await one(`SELECT sum(simulations)::int AS n FROM usage_admissions WHERE period = $1`, [CUR]);
    expect(snap.spend).toMatchObject({
      period: CUR,
      cost_usd: Number(spend.cost) / 1e6,
      tokens: Number(spend.tokens),
      simulations: Number(spend.sims) + admitted.n,
      jobs_completed: Number(spend.completed),
      jobs_failed: Number(spend.failed),
    });
    const top = await sql.query(`SELECT user_id, cost_micros FROM usage_periods WHERE period = $1 ORDER BY cost_micros DESC, user_id LIMIT 5`, [CUR]);
    expect(snap.spend.top_users.map((u) => [u.user_id, u.cost_usd])).toEqual(top.rows.map((r) => [r.user_id, Number(r.cost_micros) / 1e6]));
  });

  it("measures reconciler lag by the oldest unapplied event, and running jobs per worker", async () => {
    const keys = redisKeys(env.prefix);
    expect((await dashboardSnapshot(env.core)).events.reconciler_lag_ms).toBe(0);
    // Stream ids carry the time an event was added (Redis' clock, this machine's).
    const added = Date.now() - 4_000;
    await env.core.redis.xadd(keys.events, `${added}-0`, "e", "{}");
    await env.core.redis.xadd(keys.events, `${added + 3_000}-0`, "e", "{}");
    const lagged = await dashboardSnapshot(env.core);
    const upTo = Date.now() - added;
    expect(lagged.events.backlog).toBe(2);
    expect(lagged.events.reconciler_lag_ms).toBeGreaterThanOrEqual(3_999);
    expect(lagged.events.reconciler_lag_ms).toBeLessThanOrEqual(upTo + 1);

    // Two live workers; one of them (a real BullMQ Worker named by its id) holds a job.
    await env.core.registry.heartbeat("worker-a", 3, 60_000);
    await env.core.registry.heartbeat("worker-b", 2, 60_000);
    const held = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    worker = new Worker(
      SIMULATIONS_QUEUE,
      async () => {
        started();
        await held;
      },
      { connection: env.redis(), prefix: env.prefix, name: "worker-a", concurrency: 1 },
    );
    await env.core.queue.queue.add(RUN_SIMULATION_JOB, { jobId: "sim_f00000000011", requestId: null });
    await running;
    const snap = await waitFor(
      async () => {
        const s = await dashboardSnapshot(env.core);
        return s.workers.list.some((w) => w.running > 0) ? s : false;
      },
      { timeoutMs: 10_000, what: "the job active on worker-a" },
    );
    expect(snap.workers).toEqual({
      live: 2,
      capacity: 5,
      busy_slots: 1,
      list: [
        { id: "worker-a", concurrency: 3, running: 1 },
        { id: "worker-b", concurrency: 2, running: 0 },
      ],
      running_elsewhere: 0,
    });
    release();
  });

  it("reads no history: no scan of the jobs, batches or rollups, rows read bounded by work in flight and accounts", async () => {
    const statements: [string, { text: string; values: unknown[] }][] = [
      ["waiting", DASHBOARD_SQL.waiting()],
      ["openByStatus", DASHBOARD_SQL.openByStatus()],
      ["openBatches", DASHBOARD_SQL.openBatches()],
      ["spend", DASHBOARD_SQL.spend(CUR)],
    ];
    const big = ["simulation_jobs", "batches", "usage_periods", "usage_admissions", "ledger_entries"];
    for (const [name, s] of statements) {
      const res = await sql.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${s.text}`, s.values);
      const scans = scansOf((res.rows[0]["QUERY PLAN"] as Record<string, any>[])[0]!);
      const described = scans.map((x) => `${x.type} ${x.relation}${x.index ? ` (${x.index})` : ""}: ${x.read}`).join("; ");
      expect({ name, seqScans: scans.filter((x) => x.type === "Seq Scan" && big.includes(x.relation)).map((x) => x.relation), described }).toEqual({
        name,
        seqScans: [],
        described,
      });
      const read = (t: string) => scans.filter((x) => x.relation === t).reduce((a, x) => a + x.read, 0);
      // In flight: 2 open batches, 5 batch jobs and 3 single jobs; history: 3,000 batches, 20,000 jobs, 24,000 rollup rows.
      expect({ name, batches: read("batches") <= 2 * 2, jobs: read("simulation_jobs") <= 10, described }).toEqual({
        name,
        batches: true,
        jobs: true,
        described,
      });
      // The period's spend probes one rollup row per account (of 12 periods each).
      expect({ name, rollup: read("usage_periods") <= USERS, described }).toEqual({ name, rollup: true, described });
    }
  });
});
