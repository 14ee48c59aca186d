import { readFileSync } from "node:fs";
import path from "node:path";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import request from "supertest";
import { wireApi } from "@simbatch/api";
import { periodOf } from "@simbatch/contracts";
import { activeJob, dispatch, evaluateBatches, listBatches, listJobs, LOOKAHEAD_PER_SLOT, SideEffects, type CoreDeps } from "@simbatch/core";
import { inTransaction, Prisma, PREPARED_PLAN_SETTINGS, type Db } from "@simbatch/db";
import { PrismaClient } from "@simbatch/db/src/generated/client.ts";
import type { ApiCallFlusher } from "@simbatch/queue";
import { TestEnv } from "@simbatch/testing";
import { counterDrift as sharedCounterDrift } from "../support/invariants.ts";

/**
 * The control plane at scale, with bounds that do not depend on machine speed:
 * a backlog of 10k (then 20k) waiting jobs and a month of 10k+ finished jobs
 * with their ledger charges, written straight in SQL with the counter triggers
 * running. Checks that the trigger-kept counters equal aggregates over the raw
 * rows, that one dispatch pass sends a constant number of statements whatever
 * the backlog and releases exactly the right jobs, that the hot queries read a
 * bounded number of rows (EXPLAIN ANALYZE, never a Seq Scan of the jobs or the
 * ledger), and that the usage routes answer what the raw rows say.
 * No workers and no reconciler run: nothing moves but what the test does.
 */

const ROOT = path.resolve(__dirname, "../..");
const CAPACITY = 50;
/** capacity x (1 + LOOKAHEAD_PER_SLOT) */
const WINDOW = CAPACITY * (1 + LOOKAHEAD_PER_SLOT);
const MAIN = "scale-main";
const OTHERS = ["scale-u1", "scale-u2", "scale-u3", "scale-u4", "scale-u5"];
const BACKGROUND_USERS = 2_000;
const BACKLOG_BATCHES = 100;
const JOBS_PER_BATCH = 100;
const HISTORY_BATCHES = 100;
const HISTORY_SINGLES = 2_000;
/** Jobs admitted two months ago and finished last month (usage splits them across the two periods). */
const CROSS_MONTH_BATCHES = 5;
const CURRENT_FINISHED = 500;
const ESTIMATE = 1_000;
const PARALLEL = [3, 10, 50, 100];

// A fixed clock: every period the code and the test compute is the same whatever the wall time.
const NOW = new Date();
const CUR = periodOf(NOW);
const PREV = periodOf(new Date(Date.UTC(NOW.getUTCFullYear(), NOW.getUTCMonth() - 1, 15)));
const PREV2 = periodOf(new Date(Date.UTC(NOW.getUTCFullYear(), NOW.getUTCMonth() - 2, 15)));

const jobId = (n: number) => `sim_${n.toString(16).padStart(12, "0")}`;
const batchId = (n: number) => `batch_${n.toString(16).padStart(12, "0")}`;

interface BatchSpec {
  n: number;
  id: string;
  owner: string;
  priority: number;
  parallel: number;
  jobs: number;
  createdAt: Date;
}

// ---------------------------------------------------------------------------
// Statement counting: a Prisma client over a pg Pool whose clients record every query.

interface Sent {
  text: string;
  values: unknown[];
}
const sent: Sent[] = [];

class CountingClient extends pg.Client {
  override query(...args: unknown[]): any {
    const [q, v] = args as [string | { text: string; values?: unknown[] }, unknown[] | undefined];
    if (typeof q === "string") sent.push({ text: q, values: v ?? [] });
    else if (q && typeof q === "object" && "text" in q) sent.push({ text: q.text, values: q.values ?? v ?? [] });
    return (super.query as (...a: unknown[]) => unknown).apply(this, args);
  }
}

// ---------------------------------------------------------------------------
// Hot queries, copied from the source. `${"expr"}` stands for the source's `${expr}`:
// the test checks the copy still occurs in the file (whitespace aside), so a
// change to the code's query fails here until the copy (and its bound) is revisited.

interface HotQuery {
  file: string;
  strings: readonly string[];
  params: string[];
}
const from =
  (file: string) =>
  (strings: TemplateStringsArray, ...params: string[]): HotQuery => ({ file, strings: strings.raw, params });
const squash = (s: string) => s.replace(/\s+/g, " ").trim();
const sourceText = (q: HotQuery) => q.strings.reduce((acc, s, i) => acc + (i > 0 ? "${" + q.params[i - 1] + "}" : "") + s, "");

function bind(q: HotQuery, values: Record<string, unknown>): { text: string; values: unknown[] } {
  const out: unknown[] = [];
  let text = q.strings[0]!;
  q.params.forEach((name, i) => {
    if (!(name in values)) throw new Error(`no value for \${${name}}`);
    const v = values[name];
    if (v instanceof Prisma.Sql && v.values.length === 0) {
      text += v.sql; // a fragment the source inlines (e.g. activeJob()), not a bound value
    } else if (name.startsWith("Prisma.join(")) {
      text += (v as unknown[]).map((x) => (out.push(x), `$${out.length}`)).join(", ");
    } else {
      out.push(v);
      text += `$${out.length}`;
    }
    text += q.strings[i + 1]!;
  });
  return { text, values: out };
}

const DISPATCH_BUSY = from("dispatcher.ts")`
      SELECT count(*)::int AS n, min(priority) FILTER (WHERE status = 'PENDING') AS queued_priority
      FROM simulation_jobs WHERE ${"activeJob()"}`;

const DISPATCH_USERS = from("dispatcher.ts")`
    SELECT o.owner_id AS user_id, u.tier::text AS tier, COALESCE(c.active_jobs, 0) AS active_jobs, c.last_released_at, p.cost_micros AS cost_used
    FROM (
      SELECT DISTINCT b.owner_id FROM batches b WHERE b.waiting_jobs > 0 AND b.stop_reason IS NULL AND b.status IN ('PENDING', 'RUNNING') AND NOT b.paused
      UNION
      SELECT DISTINCT j.owner_id FROM simulation_jobs j WHERE j.batch_id IS NULL AND j.status = 'PENDING' AND j.released_at IS NULL
    ) o CROSS JOIN LATERAL (SELECT u.tier FROM users u WHERE u.id = o.owner_id LIMIT 1) u
      LEFT JOIN LATERAL (SELECT c.active_jobs, c.last_released_at FROM user_counters c WHERE c.user_id = o.owner_id LIMIT 1) c ON true
      LEFT JOIN LATERAL (SELECT p.cost_micros FROM usage_periods p WHERE p.user_id = o.owner_id AND p.period = ${"period"} LIMIT 1) p ON true`;

const DISPATCH_CANDIDATES = from("dispatcher.ts")`
    SELECT j.id, b.owner_id, b.id AS batch_id, j.batch_index, b.priority, j.estimated_cost_micros, j.created_at, j.request_id,
      b.parallel_jobs, b.active_jobs, b.budget_cap_micros, (b.charged_micros + b.active_estimate_micros)::bigint AS committed_micros
    FROM unnest(${"eligible"}::text[], ${"loads"}::int[]) AS owner(id, load)
    CROSS JOIN LATERAL (
      SELECT * FROM (
        -- A batch offers what it can start: its free parallel_jobs slots, at most its waiting jobs.
        SELECT b.*, sum(LEAST(b.parallel_jobs - b.active_jobs, b.waiting_jobs)) OVER (ORDER BY b.priority DESC, b.created_at, b.id)
          - LEAST(b.parallel_jobs - b.active_jobs, b.waiting_jobs) AS slots_before,
          CASE WHEN b.priority > ${"above"} THEN ${"window"} ELSE owner.load END AS reach
        FROM (
          SELECT * FROM batches b
          WHERE b.owner_id = owner.id AND b.waiting_jobs > 0 AND b.stop_reason IS NULL AND b.status IN ('PENDING', 'RUNNING') AND NOT b.paused
            AND b.active_jobs < b.parallel_jobs
          ORDER BY b.priority DESC, b.created_at, b.id LIMIT ${"window"}
        ) b
      ) b WHERE b.slots_before < b.reach
    ) b
    CROSS JOIN LATERAL (
      SELECT * FROM simulation_jobs j
      WHERE j.batch_id = b.id AND j.status = 'PENDING' AND j.released_at IS NULL
      ORDER BY j.batch_index LIMIT LEAST(b.reach - b.slots_before, b.parallel_jobs - b.active_jobs)
    ) j
    UNION ALL
    SELECT j.id, j.owner_id, NULL, NULL, j.priority, j.estimated_cost_micros, j.created_at, j.request_id, NULL, NULL, NULL, NULL
    FROM unnest(${"eligible"}::text[], ${"loads"}::int[]) AS owner(id, load)
    CROSS JOIN LATERAL (
      SELECT * FROM (
        SELECT j.*, row_number() OVER (ORDER BY j.created_at) AS rank FROM (
          SELECT * FROM simulation_jobs j
          WHERE j.owner_id = owner.id AND j.batch_id IS NULL AND j.status = 'PENDING' AND j.released_at IS NULL
          ORDER BY j.created_at LIMIT ${"window"}
        ) j
      ) j WHERE j.rank <= owner.load OR j.priority > ${"above"}
    ) j
    ORDER BY batch_id NULLS FIRST, batch_index, created_at, id`;

const ADMISSION_QUOTA = from("admission.ts")`
    SELECT u.tier::text AS tier, p.simulations AS sims, p.cost_micros AS cost, c.unfinished_estimate_micros AS reserved, c.unfinished_single_jobs AS singles
    FROM users u LEFT JOIN user_totals c ON c.user_id = u.id LEFT JOIN usage_totals p ON p.user_id = u.id AND p.period = ${"period"}
    WHERE u.id = ${"userId"}`;

const USAGE_VIEW = from("usage-service.ts")`
    SELECT simulations AS sims, cost_micros AS cost, tokens FROM usage_totals WHERE user_id = ${"user.id"} AND period = ${"period"}`;

const API_CALLS_BASE = from("usage-service.ts")`
    SELECT (api_calls + ledger_api_calls)::bigint AS n FROM usage_periods WHERE user_id = ${"userId"} AND period = ${"period"}`;

const USAGE_HISTORY = from("usage-service.ts")`
    SELECT period, (api_calls + ledger_api_calls)::bigint AS api_calls, simulations AS simulations_run, completed, failed,
      cost_micros AS cost, tokens
    FROM usage_totals
    WHERE user_id = ${"userId"} AND period < ${"currentPeriod"}
      AND (api_calls + ledger_api_calls <> 0 OR simulations <> 0 OR completed <> 0 OR failed <> 0 OR cost_micros <> 0 OR tokens <> 0)
    ORDER BY period DESC LIMIT ${"periods"}`;

const JOB_STATS = from("queries.ts")`
    SELECT c.jobs_total AS total, c.jobs_unfinished AS unfinished, c.jobs_completed AS completed, c.jobs_failed AS failed,
      c.jobs_cancelled AS cancelled, c.charged_micros AS cost, c.charged_tokens AS tokens,
      CASE WHEN c.duration_count > 0 THEN c.duration_seconds_sum / c.duration_count END AS avg_s,
      (SELECT count(*) FROM simulation_jobs j WHERE j.owner_id = ${"userId"} AND j.status = 'RUNNING') AS running
    FROM user_totals c WHERE c.user_id = ${"userId"}`;

const AGGREGATE_BATCHES = from("batch-queries.ts")`
    SELECT b.id, b.total_jobs, b.completed_jobs, b.failed_jobs, b.cancelled_jobs, b.charged_micros, b.charged_tokens, b.job_ids,
      CASE WHEN b.active_jobs = 0 THEN 0
        ELSE (SELECT count(*) FROM simulation_jobs j WHERE j.batch_id = b.id AND j.status = 'RUNNING')::int END AS running
    FROM batches b WHERE b.id IN (${"Prisma.join(batchIds)"})`;

const SWEEP_IN_FLIGHT = from("sweep.ts")`
    SELECT j.id, j.priority, j.request_id, j.cancel_requested, j.status::text, j.attempts, j.created_at,
      o.status AS outcome, o.cost_micros AS outcome_cost, o.tokens AS outcome_tokens, o.error_message AS outcome_error, o.ended_at AS outcome_at
    FROM simulation_jobs j
    LEFT JOIN job_attempt_outcomes o ON j.status = 'RUNNING' AND o.job_id = j.id AND o.attempt = j.attempts
    WHERE ${'activeJob("j")'}
      AND (${"jc === null"}::boolean OR (j.created_at, j.id) > (${"jc?.createdAt ?? new Date(0)"}::timestamp, ${'jc?.id ?? ""'}::text))
    ORDER BY j.created_at, j.id LIMIT ${"limit"}::int`;

const SWEEP_OPEN_BATCHES = from("sweep.ts")`
    SELECT id, created_at FROM batches WHERE completed_at IS NULL
      AND (${"bc === null"}::boolean OR (created_at, id) > (${"bc?.createdAt ?? new Date(0)"}::timestamp, ${'bc?.id ?? ""'}::text))
    ORDER BY created_at, id LIMIT ${"limit"}::int`;

/** evaluateBatches on a batch no job of which has started (every open batch of a backlog, on every sweep). */
const EVALUATE_FIRST_START = from("batch-state.ts")`SELECT min(started_at) AS first FROM simulation_jobs WHERE batch_id = ${"b.id"}`;

const OPERATIONS_JOBS = from("operations.ts")`
      WITH c AS (
        SELECT COALESCE(sum(jobs_completed), 0)::int AS completed, COALESCE(sum(jobs_failed), 0)::int AS failed,
          COALESCE(sum(jobs_cancelled), 0)::int AS cancelled,
          (COALESCE(sum(waiting_jobs), 0) + (SELECT COALESCE(sum(waiting_jobs), 0) FROM user_admissions))::int AS waiting
        FROM user_counters
      )
      SELECT s.status, false AS released, s.n FROM c,
        LATERAL (VALUES ('COMPLETED', c.completed), ('FAILED', c.failed), ('CANCELLED', c.cancelled), ('PENDING', c.waiting)) AS s(status, n)
      UNION ALL SELECT status::text, (released_at IS NOT NULL), count(*)::int FROM simulation_jobs
        WHERE ${"activeJob()"} GROUP BY 1, 2`;

const OPERATIONS_WAITING = from("operations.ts")`
    WITH b AS (
      SELECT owner_id, sum(LEAST(waiting_jobs, GREATEST(parallel_jobs - active_jobs, 0)))::int AS room, min(created_at) AS oldest
      FROM batches WHERE waiting_jobs > 0 AND stop_reason IS NULL AND status IN ('PENDING', 'RUNNING')
      GROUP BY owner_id
    ), s AS (
      SELECT owner_id, count(*)::int AS room, min(created_at) AS oldest
      FROM simulation_jobs WHERE batch_id IS NULL AND status = 'PENDING' AND released_at IS NULL
      GROUP BY owner_id
    ), o AS (
      SELECT owner_id, COALESCE(b.room, 0) + COALESCE(s.room, 0) AS room, LEAST(b.oldest, s.oldest) AS oldest
      FROM b FULL JOIN s USING (owner_id)
    )
    SELECT u.tier::text AS tier, COALESCE(c.active_jobs, 0)::int AS active, o.room,
      GREATEST(EXTRACT(EPOCH FROM (now() - o.oldest)), 0)::float8 AS oldest_s
    FROM o JOIN LATERAL (SELECT u.tier FROM users u WHERE u.id = o.owner_id LIMIT 1) u ON true
      LEFT JOIN LATERAL (SELECT c.active_jobs FROM user_counters c WHERE c.user_id = o.owner_id LIMIT 1) c ON true`;

const OPERATIONS_RELEASED = from("operations.ts")`
      SELECT GREATEST(EXTRACT(EPOCH FROM (now() - min(released_at))), 0)::float8 AS oldest_s,
        (SELECT sum(charged_micros) FROM user_counters)::bigint AS charged
      FROM simulation_jobs WHERE ${"activeJob()"} AND status = 'PENDING'`;

// ---------------------------------------------------------------------------
// Plans: rows read per table, counting what filters removed, over every loop.

interface ScanNode {
  type: string;
  relation: string;
  index: string | null;
  read: number;
}
interface PlanSummary {
  scans: ScanNode[];
  readOn(table: string): number;
  seqScans(): string[];
  text(): string;
}

function summarize(plan: Record<string, any>): PlanSummary {
  const scans: ScanNode[] = [];
  const walk = (node: Record<string, any>) => {
    if (node["Relation Name"]) {
      const loops = Number(node["Actual Loops"] ?? 1);
      const perLoop = Number(node["Actual Rows"] ?? 0) + Number(node["Rows Removed by Filter"] ?? 0) + Number(node["Rows Removed by Index Recheck"] ?? 0);
      scans.push({ type: node["Node Type"], relation: node["Relation Name"], index: node["Index Name"] ?? null, read: Math.round(perLoop * loops) });
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan.Plan);
  return {
    scans,
    readOn: (t) => scans.filter((s) => s.relation === t).reduce((a, s) => a + s.read, 0),
    seqScans: () => scans.filter((s) => s.type === "Seq Scan").map((s) => s.relation),
    text: () => scans.map((s) => `${s.type} ${s.relation}${s.index ? ` (${s.index})` : ""}: ${s.read} rows`).join("; "),
  };
}

const BIG_TABLES = ["simulation_jobs", "ledger_entries"];

describe("control plane at scale (10k backlog, 10k+ history)", () => {
  const env = new TestEnv({ clock: { now: () => NOW } });
  let sql: pg.Client;
  /** A session whose prepared dispatch reads were planned on empty tables (beforeAll). */
  let generic: pg.Client;
  let pool: pg.Pool;
  let countingDb: Db;
  let deps: CoreDeps;
  let app: ReturnType<typeof wireApi>["app"];
  let flusher: ApiCallFlusher;
  let mainKey: string;
  const batches: BatchSpec[] = [];
  const measured: Record<string, string> = {};

  const one = async <T = Record<string, any>>(text: string, values: unknown[] = []): Promise<T> => (await sql.query(text, values)).rows[0] as T;

  async function insertBatches(specs: BatchSpec[], period: string): Promise<void> {
    await sql.query(
      `INSERT INTO batches (id, owner_id, status, priority, fail_fast, parallel_jobs, estimated_cost_micros, total_jobs, job_ids, created_at)
       SELECT s.id, s.owner, 'PENDING', s.priority, false, s.parallel, s.jobs::bigint * $6, s.jobs,
         ARRAY(SELECT 'sim_' || lpad(to_hex(s.n * 1000 + i), 12, '0') FROM generate_series(0, s.jobs - 1) i ORDER BY i), s.created_at
       FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::int[], $7::int[], $8::timestamp[]) AS s(n, id, owner, priority, parallel, jobs, created_at)`,
      [
        specs.map((s) => s.n),
        specs.map((s) => s.id),
        specs.map((s) => s.owner),
        specs.map((s) => s.priority),
        specs.map((s) => s.parallel),
        ESTIMATE,
        specs.map((s) => s.jobs),
        specs.map((s) => s.createdAt.toISOString().replace("Z", "")),
      ],
    );
    // One statement for every job of these batches: the statement-level trigger runs once.
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, batch_id, batch_index, priority, template_id, entity_count, timepoint_count, temporal_mode,
         export_formats, estimated_cost_micros, admitted_period, created_at)
       SELECT b.job_ids[i + 1], b.owner_id, b.id, i, b.priority, 'test/scripted', 3, 3, 'FORWARD', '{}', $2, $3, b.created_at
       FROM batches b CROSS JOIN LATERAL generate_series(0, b.total_jobs - 1) i
       WHERE b.id = ANY($1::text[])`,
      [specs.map((s) => s.id), ESTIMATE, period],
    );
    batches.push(...specs);
  }

  /** What a pass must release: batches by priority (then age), each its first jobs up to its free slots. */
  function expectedRelease(window: number): string[] {
    const ids: string[] = [];
    const order = [...batches].sort((a, b) => b.priority - a.priority || a.createdAt.getTime() - b.createdAt.getTime());
    for (const b of order) {
      const take = Math.min(b.parallel, b.jobs, window - ids.length);
      for (let i = 0; i < take; i++) ids.push(jobId(b.n * 1000 + i));
    }
    return ids.sort();
  }

  /** Counters kept by the triggers vs the same figures recomputed from the rows (tests/support/invariants.ts). */
  const counterDrift = () => sharedCounterDrift(sql);

  async function explain(name: string, q: HotQuery, values: Record<string, unknown>): Promise<PlanSummary> {
    const src = readFileSync(path.join(ROOT, "packages/core/src", q.file), "utf8");
    // The copy must still be the code's query: when this fails, update the copy and revisit its bound.
    expect({ query: name, inSource: squash(src).includes(squash(sourceText(q))) }).toEqual({ query: name, inSource: true });
    const bound = bind(q, values);
    return explainSql(name, bound.text, bound.values);
  }

  async function explainSql(name: string, text: string, values: unknown[]): Promise<PlanSummary> {
    const res = await sql.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    const s = summarize((res.rows[0]["QUERY PLAN"] as Record<string, any>[])[0]!);
    measured[name] = s.text();
    return s;
  }

  /** The dispatch reads a pass prepares, by statement name, with their values for these eligible users. */
  const genericReads = (eligible: string[]): [string, HotQuery, Record<string, unknown>][] => [
    ["dispatch_busy", DISPATCH_BUSY, { "activeJob()": activeJob() }],
    ["dispatch_users", DISPATCH_USERS, { period: CUR }],
    ["dispatch_candidates", DISPATCH_CANDIDATES, { eligible, loads: eligible.map(() => WINDOW), above: 101, window: WINDOW }],
  ];
  /** EXECUTE takes no bind parameters (a utility statement): the values go in as literals. */
  const literal = (v: unknown): string =>
    Array.isArray(v)
      ? pg.Client.prototype.escapeLiteral(`{${v.map((x) => `"${String(x).replace(/["\\]/g, "\\$&")}"`).join(",")}}`)
      : typeof v === "number"
        ? String(v)
        : pg.Client.prototype.escapeLiteral(String(v));
  const executeSql = (name: string, values: unknown[]) => (values.length === 0 ? `EXECUTE ${name}` : `EXECUTE ${name}(${values.map(literal).join(", ")})`);

  /** One dispatch pass through the counting client: the statements it sent and what it released. */
  async function measuredDispatch(): Promise<{ statements: Sent[]; released: number }> {
    sent.length = 0;
    const released = await dispatch(deps);
    return { statements: [...sent], released };
  }

  beforeAll(async () => {
    await env.setup();
    const core = env.core;
    sql = new pg.Client({ connectionString: env.databaseUrl });
    await sql.connect();
    // The dispatch reads as a pass prepares them, planned now, while every table is empty
    // and has never been analyzed: the connection keeps these generic plans (see below).
    generic = new pg.Client({ connectionString: env.databaseUrl });
    await generic.connect();
    await generic.query(`BEGIN; ${PREPARED_PLAN_SETTINGS}`);
    for (const [name, q, values] of genericReads([])) {
      const bound = bind(q, values);
      await generic.query(`PREPARE ${name} AS ${bound.text}`);
      await generic.query(executeSql(name, bound.values));
    }
    await generic.query("COMMIT");
    pool = new pg.Pool({ connectionString: env.databaseUrl, max: 2, Client: CountingClient });
    countingDb = new PrismaClient({ adapter: new PrismaPg(pool) }) as unknown as Db;
    deps = { ...core, db: countingDb };
    await core.registry.heartbeat("scale-worker", CAPACITY, 3_600_000);

    ({ app, flusher } = wireApi(core, { config: { adminToken: undefined, maxBodyBytes: 64 * 1024 }, flushIntervalMs: 60_000, rateLimitEnabled: false }));

    mainKey = (await env.user(MAIN, "enterprise")).key;
    for (const u of OTHERS) await env.user(u, "pro");
    const t0 = Date.UTC(NOW.getUTCFullYear(), NOW.getUTCMonth(), 1);

    // Background: many users with a finished job and a year of rollup rows, so the
    // rollup and counter tables are not small enough for any plan to be cheap.
    await sql.query(`INSERT INTO users (id, tier) SELECT 'bg-' || lpad(n::text, 5, '0'), 'free' FROM generate_series(1, $1) n`, [BACKGROUND_USERS]);
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, status, entity_count, timepoint_count, temporal_mode, export_formats, estimated_cost_micros,
         cost_micros, tokens_used, admitted_period, created_at, started_at, completed_at)
       SELECT 'sim_' || lpad(to_hex(50000000 + n), 12, '0'), 'bg-' || lpad(n::text, 5, '0'), 'COMPLETED', 1, 1, 'FORWARD', '{}', 500, 400, 4, $2,
         $3::timestamp, $3::timestamp, $3::timestamp + interval '2 seconds'
       FROM generate_series(1, $1) n`,
      [BACKGROUND_USERS, PREV2, `${PREV2}-10 12:00:00`],
    );
    await sql.query(
      `INSERT INTO ledger_entries (user_id, period, kind, api_calls, simulations, reason)
       SELECT 'bg-' || lpad(n::text, 5, '0'), to_char(date '2020-01-01' + make_interval(months => m), 'YYYY-MM'), 'ADJUSTMENT', 3, 1, 'seed'
       FROM generate_series(1, $1) n, generate_series(0, 11) m`,
      [BACKGROUND_USERS],
    );

    // The main user's backlog: 100 batches x 100 waiting jobs, distinct priorities 100..1
    // in shuffled creation order, parallel_jobs 3/10/50/100.
    const backlog: BatchSpec[] = Array.from({ length: BACKLOG_BATCHES }, (_, k) => ({
      n: k + 1,
      id: batchId(k + 1),
      owner: MAIN,
      priority: 100 - ((k * 37) % BACKLOG_BATCHES),
      parallel: PARALLEL[k % PARALLEL.length]!,
      jobs: JOBS_PER_BATCH,
      createdAt: new Date(t0 + k * 1000),
    }));
    // Other users: small backlogs at priority 0, batches and single jobs.
    const small: BatchSpec[] = OTHERS.flatMap((u, i) =>
      [0, 1].map((j) => {
        const n = 500 + i * 2 + j;
        return { n, id: batchId(n), owner: u, priority: 0, parallel: 3, jobs: 20, createdAt: new Date(t0 + 200_000 + n * 1000) };
      }),
    );
    await insertBatches([...backlog, ...small], CUR);
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, priority, entity_count, timepoint_count, temporal_mode, export_formats, estimated_cost_micros, admitted_period, created_at)
       SELECT 'sim_' || lpad(to_hex(40000000 + i * 100 + n), 12, '0'), u, 0, 1, 1, 'FORWARD', '{}', $2, $3, $4::timestamp + n * interval '1 second'
       FROM unnest($1::text[]) WITH ORDINALITY AS o(u, i), generate_series(1, 5) n`,
      [OTHERS, ESTIMATE, CUR, new Date(t0).toISOString().replace("Z", "")],
    );

    // History: 100 finished batches x 100 jobs (every 10th failed) last month, 5 of
    // them admitted the month before; 2,000 single jobs (every 20th cancelled before
    // starting, the next failed); 500 jobs finished this month. Each charged once.
    const history = Array.from({ length: HISTORY_BATCHES }, (_, k) => 1000 + k);
    // Batch k starts on day 2 + k x 5 h of last month (the first few were admitted the
    // month before), its job i one minute after the previous one, each running 1-3 s.
    await sql.query(
      `INSERT INTO batches (id, owner_id, status, priority, fail_fast, parallel_jobs, estimated_cost_micros, total_jobs, job_ids, created_at, started_at, completed_at)
       SELECT 'batch_' || lpad(to_hex(n), 12, '0'), $2, 'PARTIAL', 50, false, 10, $3::bigint * 100, 100,
         ARRAY(SELECT 'sim_' || lpad(to_hex(n * 1000 + i), 12, '0') FROM generate_series(0, 99) i ORDER BY i),
         CASE WHEN n - 1000 < $5 THEN t.month - interval '1 hour' ELSE t.start END, t.start, t.start + interval '1 day'
       FROM unnest($1::int[]) n, LATERAL (SELECT ($4 || '-01')::timestamp AS month,
         ($4 || '-01')::timestamp + interval '1 day' + (n - 1000) * interval '5 hours' AS start) t`,
      [history, MAIN, ESTIMATE, PREV, CROSS_MONTH_BATCHES],
    );
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, batch_id, batch_index, status, priority, template_id, entity_count, timepoint_count, temporal_mode,
         export_formats, estimated_cost_micros, cost_micros, tokens_used, admitted_period, created_at, started_at, completed_at)
       SELECT b.job_ids[i + 1], b.owner_id, b.id, i, CASE WHEN i % 10 = 9 THEN 'FAILED' ELSE 'COMPLETED' END::"JobStatus", 50, 'test/scripted', 3, 3,
         'FORWARD', '{}', $2, 500 + (i % 7) * 100, 10 + i % 5, to_char(b.created_at, 'YYYY-MM'), b.created_at,
         b.started_at + i * interval '1 minute', b.started_at + i * interval '1 minute' + (1 + i % 3) * interval '1 second'
       FROM batches b CROSS JOIN LATERAL generate_series(0, 99) i
       WHERE b.id = ANY($1::text[])`,
      [history.map(batchId), ESTIMATE],
    );
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, status, entity_count, timepoint_count, temporal_mode, export_formats, estimated_cost_micros,
         cost_micros, tokens_used, admitted_period, created_at, started_at, completed_at, cancel_reason)
       SELECT 'sim_' || lpad(to_hex(30000000 + n), 12, '0'), $1, s.status::"JobStatus", 1, 1, 'FORWARD', '{}', $4,
         CASE WHEN s.status = 'CANCELLED' THEN 0 ELSE 300 + n % 11 END, CASE WHEN s.status = 'CANCELLED' THEN 0 ELSE n % 13 END,
         $3, t.at, CASE WHEN s.status = 'CANCELLED' THEN NULL ELSE t.at END, t.at + interval '4 seconds',
         CASE WHEN s.status = 'CANCELLED' THEN 'seed' END
       FROM generate_series(0, $2 - 1) n,
         LATERAL (SELECT CASE WHEN n % 20 = 0 THEN 'CANCELLED' WHEN n % 20 = 1 THEN 'FAILED' ELSE 'COMPLETED' END AS status) s,
         LATERAL (SELECT ($3 || '-02')::timestamp + n * interval '17 minutes' AS at) t`,
      [MAIN, HISTORY_SINGLES, PREV, ESTIMATE],
    );
    await sql.query(
      `INSERT INTO simulation_jobs (id, owner_id, status, entity_count, timepoint_count, temporal_mode, export_formats, estimated_cost_micros,
         cost_micros, tokens_used, admitted_period, created_at, started_at, completed_at)
       SELECT 'sim_' || lpad(to_hex(31000000 + n), 12, '0'), $1, 'COMPLETED', 1, 1, 'FORWARD', '{}', $3, 700, 20, $4,
         $5::timestamp, $5::timestamp, $5::timestamp + interval '1 second'
       FROM generate_series(0, $2 - 1) n`,
      [MAIN, CURRENT_FINISHED, ESTIMATE, CUR, new Date(t0).toISOString().replace("Z", "")],
    );
    // One charge per finished job that ran, in the month it finished (unique (job_id, attempt)).
    await sql.query(
      `INSERT INTO ledger_entries (user_id, period, kind, job_id, batch_id, attempt, cost_micros, tokens, created_at)
       SELECT owner_id, to_char(completed_at, 'YYYY-MM'), 'CHARGE', id, batch_id, 1, cost_micros, tokens_used, completed_at
       FROM simulation_jobs WHERE owner_id = $1 AND status IN ('COMPLETED', 'FAILED')`,
      [MAIN],
    );
    await sql.query(
      `INSERT INTO ledger_entries (user_id, period, kind, simulations, api_calls, cost_micros, reason) VALUES ($1, $2, 'ADJUSTMENT', 5, 7, 250000, 'seed')`,
      [MAIN, PREV],
    );
    await sql.query("ANALYZE");
  }, 120_000);

  afterAll(async () => {
    // The figures behind the bounds, for the CI log.
    console.log(
      `scale: measured\n${Object.entries(measured)
        .map(([k, v]) => `  ${k}: ${v}`)
        .join("\n")}`,
    );
    await flusher?.stop();
    await countingDb?.$disconnect();
    await pool?.end();
    await sql?.end();
    await generic?.end();
    await env.teardown();
  });

  it("loads the backlog and history with the counters exact", async () => {
    const sizes = await one(
      `
      SELECT (SELECT count(*)::int FROM simulation_jobs WHERE owner_id = $1 AND status = 'PENDING') AS waiting,
        (SELECT count(*)::int FROM simulation_jobs WHERE owner_id = $1 AND status IN ('COMPLETED', 'FAILED') AND to_char(completed_at, 'YYYY-MM') = $2) AS finished_prev,
        (SELECT count(*)::int FROM ledger_entries WHERE user_id = $1 AND kind = 'CHARGE' AND period = $2) AS charges_prev`,
      [MAIN, PREV],
    );
    expect(sizes.waiting).toBe(BACKLOG_BATCHES * JOBS_PER_BATCH);
    expect(sizes.finished_prev).toBeGreaterThanOrEqual(10_000);
    expect(sizes.charges_prev).toBe(sizes.finished_prev);
    expect(await counterDrift()).toEqual({ batches: [], user_counters: [], usage_periods: [] });
    const c = await one(`SELECT waiting_jobs, jobs_total::int AS total FROM user_totals WHERE user_id = $1`, [MAIN]);
    expect(c).toEqual({ waiting_jobs: 10_000, total: 10_000 + HISTORY_BATCHES * 100 + HISTORY_SINGLES + CURRENT_FINISHED });
  });

  let firstPass: Sent[] = [];
  let releasedFirst: string[] = [];

  it("releases exactly the window, the first jobs of the highest-priority batches, in a few statements", async () => {
    await countingDb.$queryRaw`SELECT 1`; // connect outside the measured pass
    const { statements, released } = await measuredDispatch();
    firstPass = statements;
    measured["dispatch statements (10k backlog)"] = `${statements.length}: ${statements.map((s) => squash(s.text).slice(0, 60)).join(" | ")}`;
    releasedFirst = (await sql.query(`SELECT id FROM simulation_jobs WHERE released_at IS NOT NULL ORDER BY id`)).rows.map((r) => r.id);
    measured["dispatch released (10k backlog)"] = `${released} (window ${WINDOW})`;
    expect(released).toBe(releasedFirst.length);
    // Whatever the count, the released jobs are the first ones of the highest-priority batches.
    expect(releasedFirst).toEqual(expectedRelease(released));
    expect(statements.length).toBeLessThanOrEqual(8);
    const queued = await env.core.queue.queue.getJobCounts("waiting", "prioritized");
    expect((queued.waiting ?? 0) + (queued.prioritized ?? 0)).toBe(released);
    expect(await counterDrift()).toEqual({ batches: [], user_counters: [], usage_periods: [] });
    // From an idle fleet one pass releases exactly the window (overtaking only jumps queued jobs).
    expect(released).toBe(WINDOW);
  });

  it("sends the same statements with the backlog doubled", async () => {
    // Put the released jobs back to waiting (the triggers undo their counts), then add
    // 100 more batches x 100 jobs at lower priorities and dispatch again.
    await sql.query(`UPDATE simulation_jobs SET released_at = NULL WHERE status = 'PENDING' AND released_at IS NOT NULL`);
    await env.core.queue.queue.obliterate({ force: true });
    const t0 = Date.UTC(NOW.getUTCFullYear(), NOW.getUTCMonth(), 1) + 500_000;
    await insertBatches(
      Array.from({ length: BACKLOG_BATCHES }, (_, k) => ({
        n: 2000 + k,
        id: batchId(2000 + k),
        owner: MAIN,
        priority: 1 + (k % 50),
        parallel: PARALLEL[k % PARALLEL.length]!,
        jobs: JOBS_PER_BATCH,
        createdAt: new Date(t0 + k * 1000),
      })),
      CUR,
    );
    await sql.query("ANALYZE");
    expect((await one(`SELECT waiting_jobs FROM user_totals WHERE user_id = $1`, [MAIN])).waiting_jobs).toBe(2 * BACKLOG_BATCHES * JOBS_PER_BATCH);

    const { statements, released } = await measuredDispatch();
    measured["dispatch statements (20k backlog)"] = `${statements.length}`;
    measured["dispatch released (20k backlog)"] = `${released}`;
    expect(statements.map((s) => squash(s.text))).toEqual(firstPass.map((s) => squash(s.text)));
    const again = (await sql.query(`SELECT id FROM simulation_jobs WHERE released_at IS NOT NULL ORDER BY id`)).rows.map((r) => r.id);
    expect(again).toEqual(releasedFirst);
    expect(await counterDrift()).toEqual({ batches: [], user_counters: [], usage_periods: [] });
    expect(released).toBe(WINDOW);
  });

  it("runs the dispatch reads on the generic plans made while the tables were empty, on their indexes (EXPLAIN ANALYZE EXECUTE)", async () => {
    // A pass runs its reads as prepared statements with one generic plan per connection
    // (packages/db raw.ts, PREPARED_PLAN_SETTINGS). Nothing analyzes this database (no
    // ANALYZE has run yet in this file, and CI's Postgres runs without autovacuum), so the
    // plans `generic` made in beforeAll from empty tables are the ones that run here, on
    // the 20,000-job backlog: they must still read it through the indexes.
    const eligible = (await sql.query(`SELECT user_id FROM user_totals WHERE waiting_jobs > 0 ORDER BY user_id`)).rows.map((r) => r.user_id);
    const bounds: Record<string, number> = { dispatch_busy: 2 * WINDOW, dispatch_users: WINDOW, dispatch_candidates: 500 };
    const report: { name: string; plan: string; seqScans: string[]; read: number; max: number }[] = [];
    await generic.query(`BEGIN; ${PREPARED_PLAN_SETTINGS}`);
    try {
      for (const [name, q, values] of genericReads(eligible)) {
        const bound = bind(q, values);
        const res = await generic.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${executeSql(name, bound.values)}`);
        const plan = summarize((res.rows[0]["QUERY PLAN"] as Record<string, any>[])[0]!);
        measured[`${name} (generic plan)`] = plan.text();
        const read = plan.readOn("simulation_jobs") + plan.readOn("ledger_entries");
        report.push({ name, plan: plan.text(), seqScans: plan.seqScans().filter((t) => BIG_TABLES.includes(t)), read, max: bounds[name]! });
      }
    } finally {
      await generic.query("ROLLBACK");
    }
    expect(report.map((r) => r.name)).toEqual(Object.keys(bounds));
    expect(report.filter((r) => r.seqScans.length > 0 || r.read > r.max)).toEqual([]);
  });

  it("reads a bounded number of rows in every hot query (EXPLAIN ANALYZE)", async () => {
    // Ten released jobs start running, so the running counts have something to count.
    await sql.query(
      `UPDATE simulation_jobs SET status = 'RUNNING', started_at = $2::timestamp, attempts = 1
      WHERE id IN (SELECT id FROM simulation_jobs WHERE owner_id = $1 AND released_at IS NOT NULL AND status = 'PENDING' ORDER BY id LIMIT 10)`,
      [MAIN, NOW.toISOString().replace("Z", "")],
    );
    await sql.query("ANALYZE simulation_jobs");
    expect(await counterDrift()).toEqual({ batches: [], user_counters: [], usage_periods: [] });
    const eligible = (await sql.query(`SELECT user_id FROM user_totals WHERE waiting_jobs > 0 ORDER BY user_id`)).rows.map((r) => r.user_id);
    expect(eligible).toEqual([MAIN, ...OTHERS]);
    const inFlight = (await one(`SELECT count(*)::int AS n FROM simulation_jobs WHERE status = 'RUNNING' OR (status = 'PENDING' AND released_at IS NOT NULL)`))
      .n;
    expect(inFlight).toBe(releasedFirst.length);
    const page = (await sql.query(`SELECT id FROM batches WHERE owner_id = $1 ORDER BY active_jobs DESC, created_at DESC LIMIT 20`, [MAIN])).rows.map(
      (r) => r.id,
    );
    const unstarted = batchId(2000); // of the doubled backlog, priority 1: nothing of it released

    const checks: [string, PlanSummary, number][] = [
      // [name, plan, max rows read on simulation_jobs + ledger_entries]
      ["dispatch busy count", await explain("dispatch busy count", DISPATCH_BUSY, { "activeJob()": activeJob() }), 2 * WINDOW],
      // Owners of waiting work: distinct owners over the waiting single jobs' partial index (singles are few:
      // tier concurrency bounds them, and enterprise users submit batches), none over the backlog of batch jobs.
      ["dispatch users", await explain("dispatch users", DISPATCH_USERS, { period: CUR }), WINDOW],
      // Bound: a few times what one pass can release (the window), not the backlog.
      // Per eligible user: batches until what they can start reaches the user's reach (here the
      // whole window, as for a user at its cost limit or jobs that may overtake), and at most that many jobs.
      [
        "dispatch candidates",
        await explain("dispatch candidates", DISPATCH_CANDIDATES, { eligible, loads: eligible.map(() => WINDOW), above: 101, window: WINDOW }),
        500,
      ],
      ["admission quota read", await explain("admission quota read", ADMISSION_QUOTA, { period: CUR, userId: MAIN }), 0],
      ["usageView", await explain("usageView", USAGE_VIEW, { "user.id": MAIN, period: CUR }), 0],
      ["apiCallsBase", await explain("apiCallsBase", API_CALLS_BASE, { userId: MAIN, period: CUR }), 0],
      ["usageHistory", await explain("usageHistory", USAGE_HISTORY, { userId: MAIN, currentPeriod: CUR, periods: 24 }), 0],
      ["jobStats", await explain("jobStats", JOB_STATS, { userId: MAIN }), 20],
      ["aggregateBatches (page of 20)", await explain("aggregateBatches (page of 20)", AGGREGATE_BATCHES, { "Prisma.join(batchIds)": page }), 20 * 10],
      [
        "sweep in-flight scan",
        await explain("sweep in-flight scan", SWEEP_IN_FLIGHT, {
          'activeJob("j")': activeJob("j"),
          "jc === null": true,
          "jc?.createdAt ?? new Date(0)": new Date(0),
          'jc?.id ?? ""': "",
          limit: 1000,
        }),
        2 * WINDOW,
      ],
      [
        "sweep open batches",
        await explain("sweep open batches", SWEEP_OPEN_BATCHES, {
          "bc === null": true,
          "bc?.createdAt ?? new Date(0)": new Date(0),
          'bc?.id ?? ""': "",
          limit: 1000,
        }),
        0,
      ],
      ["operations snapshot", await explain("operations snapshot", OPERATIONS_JOBS, { "activeJob()": activeJob() }), 2 * WINDOW],
      // The metrics' waiting demand: the batches with waiting work and the waiting single jobs, not the backlog's jobs.
      ["operations waiting demand", await explain("operations waiting demand", OPERATIONS_WAITING, {}), WINDOW],
      ["operations oldest released", await explain("operations oldest released", OPERATIONS_RELEASED, { "activeJob()": activeJob() }), 2 * WINDOW],
      // Bounded by one batch's size (<= 100); the sweep runs it for every open batch that has not started.
      ["evaluateBatches first start", await explain("evaluateBatches first start", EVALUATE_FIRST_START, { "b.id": unstarted }), JOBS_PER_BATCH],
    ];
    const report = checks.map(([name, s, max]) => ({
      name,
      seqScans: s.seqScans().filter((t) => BIG_TABLES.includes(t)),
      read: s.readOn("simulation_jobs") + s.readOn("ledger_entries"),
      max,
    }));
    // Rows read on the small per-user tables: the rollup and counter reads touch a row or two.
    const small = (s: PlanSummary) =>
      s.readOn("usage_periods") + s.readOn("user_counters") + s.readOn("users") + s.readOn("user_admissions") + s.readOn("usage_admissions");
    const byName = new Map(checks.map(([n, s]) => [n, s]));
    const smallReads = {
      "admission quota read": small(byName.get("admission quota read")!),
      usageView: small(byName.get("usageView")!),
      apiCallsBase: small(byName.get("apiCallsBase")!),
      usageHistory: small(byName.get("usageHistory")!),
      jobStats: small(byName.get("jobStats")!),
      "dispatch users": byName.get("dispatch users")!.readOn("user_counters") + byName.get("dispatch users")!.readOn("users"),
    };
    // A row or two each (usageHistory: the user's three periods); dispatch: the six users with waiting work, not the 2,000 others.
    // Plus, where admissions count, up to 8 admission shard rows per user (and per period).
    const SHARDS = 8;
    const smallBounds = {
      "admission quota read": 3 + 2 * SHARDS,
      usageView: 2 + 2 * SHARDS,
      apiCallsBase: 1,
      usageHistory: 3 * (2 + 2 * SHARDS),
      jobStats: 1 + SHARDS,
      "dispatch users": 2 * (OTHERS.length + 1),
    };
    expect(Object.entries(smallReads).filter(([name, n]) => n > smallBounds[name as keyof typeof smallBounds])).toEqual([]);
    // Every hot query on its indexes, within its bound (all violations listed at once).
    expect(report.filter((r) => r.seqScans.length > 0 || r.read > r.max)).toEqual([]);
  });

  it("reads a pass's candidates up to its free slots per user (batch jobs, single jobs), and a window only of jobs that may overtake", async () => {
    const eligible = (await sql.query(`SELECT user_id FROM user_totals WHERE waiting_jobs > 0 ORDER BY user_id`)).rows.map((r) => r.user_id);
    /** The most rows of one user and kind (its batches' jobs, its single jobs) among those `keep` selects. */
    const most = async (load: number, above: number, keep: (priority: number) => boolean = () => true) => {
      const bound = bind(DISPATCH_CANDIDATES, { eligible, loads: eligible.map(() => load), above, window: WINDOW });
      const rows = (await sql.query(bound.text, bound.values)).rows as { owner_id: string; batch_id: string | null; priority: number }[];
      const per = new Map<string, number>();
      for (const r of rows.filter((r) => keep(r.priority)))
        per.set(`${r.owner_id}:${r.batch_id === null}`, (per.get(`${r.owner_id}:${r.batch_id === null}`) ?? 0) + 1);
      return { most: Math.max(0, ...per.values()), priorities: rows.map((r) => r.priority) };
    };
    expect((await most(5, 101)).most).toBe(5);
    // A full window is read only when asked for (a user at its cost limit).
    const all = await most(WINDOW, 101);
    expect(all.most).toBeGreaterThan(5);
    // Jobs above the lowest queued priority are read beyond the free slots; the others are not.
    const top = Math.max(...all.priorities);
    expect((await most(1, top - 1, (p) => p === top)).most).toBeGreaterThan(1);
    expect((await most(1, top - 1, (p) => p < top)).most).toBeLessThanOrEqual(1);
  });

  it("lists a page of jobs and batches without reading the user's history", async () => {
    const captured: Record<string, Sent[]> = {};
    for (const [name, run] of [
      ["listJobs", () => listJobs(countingDb, MAIN, undefined, { page: 1, pageSize: 20 })],
      ["listJobs(COMPLETED)", () => listJobs(countingDb, MAIN, "COMPLETED", { page: 1, pageSize: 20 })],
      ["listBatches", () => listBatches(countingDb, MAIN, undefined, { page: 1, pageSize: 20 })],
    ] as const) {
      sent.length = 0;
      await run();
      captured[name] = [...sent];
    }
    const read: Record<string, number> = {};
    for (const [name, stmts] of Object.entries(captured)) {
      let i = 0;
      for (const s of stmts.filter((x) => /^\s*SELECT/i.test(x.text))) {
        const plan = await explainSql(`${name} #${++i}`, s.text, s.values);
        read[`${name} #${i}`] = plan.readOn("simulation_jobs") + plan.readOn("ledger_entries");
      }
    }
    // A page of 20 (plus its total) should not read the whole history of the user (32k jobs).
    // The page total comes from the user's counters (only RUNNING jobs are counted, on their index).
    expect(Object.entries(read).filter(([, n]) => n > 500)).toEqual([]);
  });

  it("answers the usage routes with what the raw rows add up to", async () => {
    type Agg = Record<"sims" | "completed" | "failed" | "cost" | "tokens" | "api_calls", number>;
    const agg = async (period: string) =>
      one(
        `
      SELECT
        (SELECT count(*) FROM simulation_jobs WHERE owner_id = $1 AND admitted_period = $2 AND NOT (status = 'CANCELLED' AND started_at IS NULL))
          + (SELECT COALESCE(sum(simulations), 0) FROM ledger_entries WHERE user_id = $1 AND period = $2) AS sims,
        (SELECT count(*) FROM simulation_jobs WHERE owner_id = $1 AND status = 'COMPLETED' AND to_char(completed_at, 'YYYY-MM') = $2) AS completed,
        (SELECT count(*) FROM simulation_jobs WHERE owner_id = $1 AND status = 'FAILED' AND to_char(completed_at, 'YYYY-MM') = $2) AS failed,
        (SELECT COALESCE(sum(cost_micros), 0) FROM ledger_entries WHERE user_id = $1 AND period = $2) AS cost,
        (SELECT COALESCE(sum(tokens), 0) FROM ledger_entries WHERE user_id = $1 AND period = $2) AS tokens,
        (SELECT COALESCE(sum(api_calls), 0) FROM ledger_entries WHERE user_id = $1 AND period = $2) AS api_calls`,
        [MAIN, period],
      ).then((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])) as Agg);
    const cur = await agg(CUR);
    const prev = await agg(PREV);
    const prev2 = await agg(PREV2);
    expect(prev.completed + prev.failed).toBeGreaterThanOrEqual(10_000);
    expect(cur.sims).toBe(2 * BACKLOG_BATCHES * JOBS_PER_BATCH + CURRENT_FINISHED);
    expect(prev2.sims).toBe(CROSS_MONTH_BATCHES * 100);

    const usage = await request(app).get("/simulations/batch/usage").set("X-API-Key", mainKey);
    expect(usage.status).toBe(200);
    expect(usage.body).toMatchObject({
      user_id: MAIN,
      tier: "enterprise",
      period: CUR,
      simulations_used: cur.sims,
      cost_used_usd: cur.cost / 1e6,
      tokens_used: cur.tokens,
      is_quota_exceeded: false,
    });

    const hist = await request(app).get("/simulations/batch/usage/history?periods=24").set("X-API-Key", mainKey);
    expect(hist.status).toBe(200);
    expect(hist.body.current).toMatchObject({ period: CUR, simulations_used: cur.sims, cost_used_usd: cur.cost / 1e6, tokens_used: cur.tokens });
    const row = (p: string, a: Agg) => ({
      period: p,
      api_calls: a.api_calls,
      simulations_run: a.sims,
      simulations_completed: a.completed,
      simulations_failed: a.failed,
      cost_usd: a.cost / 1e6,
      tokens_used: a.tokens,
    });
    expect(hist.body.history).toEqual([row(PREV, prev), row(PREV2, prev2)]);
  });

  it("re-derives open batches in the sweep without reading the jobs of batches that cannot have started", async () => {
    const open = (await sql.query(`SELECT id FROM batches WHERE completed_at IS NULL ORDER BY created_at LIMIT 1000`)).rows.map((r) => r.id as string);
    // Only a batch with a job released or ended, and no start recorded, needs a look at its jobs.
    const mayHaveStarted = (
      await one(`SELECT count(*)::int AS n FROM batches WHERE completed_at IS NULL AND started_at IS NULL
      AND (active_jobs > 0 OR completed_jobs + failed_jobs + cancelled_jobs > 0)`)
    ).n as number;
    sent.length = 0;
    for (let i = 0; i < open.length; i += 50) {
      await inTransaction(countingDb, (tx) => evaluateBatches(deps, tx, open.slice(i, i + 50), new SideEffects()));
    }
    const firstStart = sent.filter((s) => squash(s.text).startsWith("SELECT min(started_at) AS first FROM simulation_jobs")).length;
    measured["sweep evaluateBatches over open batches"] =
      `${open.length} batches, ${sent.length} statements, ${firstStart} x "min(started_at)" (up to ${JOBS_PER_BATCH} job rows each)`;
    expect(firstStart).toBe(mayHaveStarted);
    expect(firstStart).toBeLessThanOrEqual(WINDOW);
    // Per chunk of 50 batches: BEGIN, the locked read, COMMIT and one quota read per owner with a
    // cost limit; per batch that may have started: a look at its jobs and the write of its start.
    const owners = (await one(`SELECT count(DISTINCT owner_id)::int AS n FROM batches WHERE completed_at IS NULL`)).n as number;
    expect(sent.length).toBeLessThanOrEqual(Math.ceil(open.length / 50) * (3 + owners) + 2 * mayHaveStarted);
    expect(await counterDrift()).toEqual({ batches: [], user_counters: [], usage_periods: [] });
  });
});
