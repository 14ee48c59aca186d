/**
 * The control plane at fleet scale, in the shape of issue 8's table: the three
 * roles as real processes (as `npm start` runs them: WORKER_CONCURRENCY=50,
 * SIM_STEP_MS=0), 1-step `test/scripted` jobs, against raw BullMQ measured in
 * the same run on the same Redis (50 producers `add`, one Worker at
 * concurrency 50, no-op). Prints each row of the table and the CPU each
 * process spent per job (read from /proc). Reports; never fails on a number.
 *
 * BENCH_SCALE (default 1) scales the job counts down for a quick look.
 * BENCH_PG_STATEMENTS=1 prints Postgres' costliest statements of the warm rounds
 * (needs pg_stat_statements in shared_preload_libraries; see CONTRIBUTING.md).
 */
import { readFileSync, readdirSync } from "node:fs";
import { Queue } from "bullmq";
import { Client } from "pg";
import { upsertUser, createApiKey } from "@simbatch/core";
import { createRedis, EventStream, SimulationQueue, Worker } from "@simbatch/queue";
import { SIMULATIONS_QUEUE } from "@simbatch/contracts";
import globalSetup from "@simbatch/testing/src/global-setup.ts";
import globalTeardown from "@simbatch/testing/src/global-teardown.ts";
import { TestEnv, waitFor } from "@simbatch/testing";
import { freePort, run, stopAll, waitHttp, type Proc } from "../tests/support/processes.ts";

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const CONCURRENCY = 50;
const E2E_BATCHES = Math.max(2, Math.round(20 * SCALE));
const JOBS_PER_BATCH = 100;
const CLIENTS = 10;
const BACKLOG = Math.max(1_000, Math.round(20_000 * SCALE));
const SMALL = Math.max(200, Math.round(2_000 * SCALE));
const RAW_JOBS = Math.max(2_000, Math.round(20_000 * SCALE));
/** Warm rounds of end to end, each right after a round of raw BullMQ: the ratio is the median of the pairs' ratios. */
const PAIRS = 3;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const median = (xs: number[]) => pct(xs, 50);
const fmt = (n: number, d = 0) => n.toFixed(d);
const row = (label: string, value: string) => console.log(`  ${label.padEnd(58)} ${value}`);

/** utime + stime of a process in ms (USER_HZ = 100). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}
/** CPU of every process whose command name starts with `name` (postgres backends come and go; counts live ones). */
function cpuOfNamed(name: string): number {
  let total = 0;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, "utf8").trim().startsWith(name)) total += cpuMs(Number(d));
    } catch {
      /* gone */
    }
  }
  return total;
}

/** Raw BullMQ's rate over RAW_JOBS, after a warm-up round of a tenth as many (as the service's e2e is measured warm). */
async function rawBullmq(): Promise<number> {
  await rawBullmqRound(Math.round(RAW_JOBS / 10));
  return rawBullmqRound(RAW_JOBS);
}

async function rawBullmqRound(total: number): Promise<number> {
  const connection = createRedis({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" }, "consumer");
  const producer = createRedis({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" }, "consumer");
  const prefix = `bench${Date.now()}`;
  const queue = new Queue("noop", { connection: producer, prefix });
  let done = 0;
  const worker = new Worker("noop", async () => undefined, { connection, prefix, concurrency: CONCURRENCY });
  worker.on("completed", () => void done++);
  await worker.waitUntilReady();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < total) {
        const i = next++;
        await queue.add("noop", { i }, { priority: 50, removeOnComplete: true });
      }
    }),
  );
  await waitFor(() => done >= total, { timeoutMs: 300_000, intervalMs: 5, what: "raw BullMQ" });
  const rate = total / ((performance.now() - t0) / 1000);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  producer.disconnect();
  return rate;
}

/**
 * The service's transport alone, no Postgres and no service code: what the roles do
 * in Redis per job, with the same classes and options. A feeder keeps at most
 * 3 jobs per worker slot released (the dispatcher's look-ahead) and adds them with
 * `SimulationQueue.addMany`; one Worker at concurrency 50 (the service's options)
 * publishes a `completed` event per job on an `EventStream`; the feeder reads the
 * events in a consumer group, acknowledges them and releases as many jobs again.
 * Its rate bounds the service's from above: the share of raw BullMQ's rate that
 * transport leaves to everything else.
 */
async function transportRound(total: number): Promise<number> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const [feed, work, events] = [createRedis({ url }, "consumer"), createRedis({ url }, "consumer"), createRedis({ url }, "consumer")];
  const prefix = `benchtransport${Date.now()}`;
  const queue = new SimulationQueue(feed, prefix);
  const stream = new EventStream(work, `${prefix}:events`, "reconcilers");
  const reader = new EventStream(events, `${prefix}:events`, "reconcilers");
  await reader.ensureGroup();
  const worker = new Worker(
    SIMULATIONS_QUEUE,
    async (job) => {
      const data = job.data as { jobId: string; requestId: string | null };
      await stream.publish({
        type: "completed",
        jobId: data.jobId,
        attempt: 1,
        at: new Date().toISOString(),
        requestId: data.requestId,
        costMicros: 0,
        tokens: 0,
        ended: true,
        batchId: "b",
      });
      return { outcome: "completed" };
    },
    { connection: work, prefix, name: "transport", concurrency: CONCURRENCY, lockDuration: 30_000, stalledInterval: 15_000, maxStalledCount: 5 },
  );
  await worker.waitUntilReady();
  const t0 = performance.now();
  let released = 0;
  let done = 0;
  const release = async () => {
    const n = Math.min(CONCURRENCY * 3 - (released - done), total - released);
    if (n <= 0) return;
    const first = released;
    released += n;
    await queue.addMany(Array.from({ length: n }, (_, k) => ({ jobId: `${prefix}-${first + k}`, priority: 50, requestId: null })));
  };
  await release();
  while (done < total) {
    const read = await reader.read("feeder", 200, 500);
    await reader.ack(read.map((e) => e.id));
    done += read.length;
    await release();
  }
  const rate = total / ((performance.now() - t0) / 1000);
  await worker.close();
  await queue.queue.obliterate({ force: true });
  await queue.close();
  await events.del(`${prefix}:events`);
  for (const r of [feed, work, events]) r.disconnect();
  return rate;
}

interface Service {
  url: string;
  procs: Record<"api" | "worker" | "reconciler", Proc>;
  pg: Client;
  env: TestEnv;
}

async function startService(): Promise<Service> {
  const env = await new TestEnv().setup();
  const port = await freePort();
  const base = {
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: env.prefix,
    PORT: String(port),
    SIMBATCH_TEST_TEMPLATES: "1",
    SIM_STEP_MS: "0",
    WORKER_CONCURRENCY: String(CONCURRENCY),
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
  };
  const procs = {
    api: run("apps/api/src/main.ts", base, [], profArgs()),
    worker: run("apps/worker/src/main.ts", base, [], profArgs()),
    reconciler: run("apps/reconciler/src/main.ts", base, [], profArgs()),
  };
  await waitHttp(`http://127.0.0.1:${port}/ready`, 60_000);
  await waitFor(() => procs.worker.output().includes("worker started") && procs.reconciler.output().includes("reconciler started"), {
    timeoutMs: 60_000,
    what: "roles",
  });
  const pg = new Client({ connectionString: env.databaseUrl });
  await pg.connect();
  return { url: `http://127.0.0.1:${port}`, procs, pg, env };
}

async function newUser(svc: Service, id: string): Promise<string> {
  const db = svc.env.core.db;
  await upsertUser(db, id, "enterprise");
  return (await createApiKey(db, id, "bench")).api_key;
}

const batchBody = (n: number) =>
  JSON.stringify({
    parallel_jobs: 100,
    simulations: Array.from({ length: n }, () => ({ template_id: "test/scripted", config: { steps: 1 } })),
  });

async function createBatch(svc: Service, key: string, n = JOBS_PER_BATCH): Promise<{ id: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${svc.url}/simulations/batch`, {
    method: "POST",
    headers: { "X-API-Key": key, "Content-Type": "application/json" },
    body: batchBody(n),
  });
  const ms = performance.now() - t0;
  const body = (await res.json()) as { batch_id: string };
  if (res.status !== 202) throw new Error(`create failed: ${res.status} ${JSON.stringify(body)}`);
  return { id: body.batch_id, ms };
}

async function waitAllFinished(svc: Service, owner: string, timeoutMs = 900_000): Promise<void> {
  await waitFor(
    async () => {
      const r = await svc.pg.query("SELECT count(*)::int AS n FROM batches WHERE owner_id = $1 AND completed_at IS NULL", [owner]);
      return r.rows[0].n === 0;
    },
    { timeoutMs, intervalMs: 20, what: `batches of ${owner} finished` },
  );
}

/** Jobs per second between the first start and the last completion, from the job rows. */
async function drainRate(svc: Service, owner: string): Promise<number> {
  const r = await svc.pg.query(
    `SELECT count(*)::int AS n, extract(epoch FROM max(completed_at) - min(started_at))::float8 AS s FROM simulation_jobs WHERE owner_id = $1`,
    [owner],
  );
  return r.rows[0].n / r.rows[0].s;
}

async function main(): Promise<void> {
  await globalSetup();
  console.log(`control plane: worker concurrency ${CONCURRENCY}, 1-step test/scripted jobs, real processes`);
  const raw = await rawBullmq();
  const svc = await startService();
  try {
    const cpu = () => ({
      api: cpuMs(svc.procs.api.child.pid!),
      worker: cpuMs(svc.procs.worker.child.pid!),
      reconciler: cpuMs(svc.procs.reconciler.child.pid!),
      postgres: cpuOfNamed("postgres"),
      redis: cpuOfNamed("redis-server"),
    });

    // Warm-up: one small batch through every path.
    const warm = await newUser(svc, "warm");
    await createBatch(svc, warm, 10);
    await waitAllFinished(svc, "warm");

    // 1. End to end: E2E_BATCHES x 100 jobs from CLIENTS concurrent clients. The first
    // round meets a cold service (V8 still compiling the hot paths, a fresh database's
    // first pages, each connection's first statements); the warm rounds after it are
    // the steady state the ratio is taken from. All are printed.
    const e2eRound = async (owner: string) => {
      const key = await newUser(svc, owner);
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (next < E2E_BATCHES) {
            next++;
            await createBatch(svc, key);
          }
        }),
      );
      await waitAllFinished(svc, owner);
      return (E2E_BATCHES * JOBS_PER_BATCH) / ((performance.now() - t0) / 1000);
    };
    const e2eCold = await e2eRound("e2e-cold");
    // The warm rounds, each paired with a raw BullMQ round just before it: this machine's
    // speed drifts within minutes, and a pair sees the same phase of it.
    const statements = process.env.BENCH_PG_STATEMENTS ? await pgStatements(svc.pg) : null;
    const commands = process.env.BENCH_REDIS_COMMANDS ? new RedisCommands() : null;
    const pairs: { raw: number; e2e: number; transport: number }[] = [];
    const spent = { api: 0, worker: 0, reconciler: 0, postgres: 0, redis: 0 };
    // Commits of the bench's database over the warm rounds: unlike the rates and CPU, a count that
    // does not move with the machine's speed, so a change in transactions per job shows in one run
    // (Postgres publishes each backend's counts within about a second, which bounds its error).
    const commits = async () => Number((await svc.pg.query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")).rows[0].xact_commit);
    let committed = 0;
    // WAL flushes (fsync of the WAL, by backends at commit and by the WAL writer), server-wide: each one
    // is a system call whose kernel time is Postgres CPU (~9% of it in a perf profile of this bench).
    const walSyncs = async () => Number((await svc.pg.query("SELECT wal_sync FROM pg_stat_wal")).rows[0].wal_sync);
    let synced = 0;
    for (let i = 0; i < PAIRS; i++) {
      const rawRate = await rawBullmqRound(RAW_JOBS);
      const transport = await transportRound(RAW_JOBS);
      const before = cpu();
      const commitsBefore = await commits();
      const syncsBefore = await walSyncs();
      await commands?.start();
      const rate = await e2eRound(`e2e-${i}`);
      await commands?.stop();
      const after = cpu();
      committed += (await commits()) - commitsBefore;
      synced += (await walSyncs()) - syncsBefore;
      for (const k of Object.keys(spent) as (keyof typeof spent)[]) spent[k] += after[k] - before[k];
      pairs.push({ raw: rawRate, e2e: rate, transport });
    }
    const jobs = PAIRS * E2E_BATCHES * JOBS_PER_BATCH;
    if (statements) await statements.print();
    if (commands) await commands.print(jobs);

    // 2. create-batch(100): one client, sequential; then 10 concurrent clients of one user.
    const seqKey = await newUser(svc, "seq");
    const seq: number[] = [];
    for (let i = 0; i < 20; i++) seq.push((await createBatch(svc, seqKey)).ms);
    await waitAllFinished(svc, "seq");
    const concKey = await newUser(svc, "conc");
    const conc: number[] = [];
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < 5; i++) conc.push((await createBatch(svc, concKey)).ms);
      }),
    );
    await waitAllFinished(svc, "conc");

    // 3. Drain rate: a small run, then a backlog built while no worker runs.
    const smallKey = await newUser(svc, "small");
    for (let i = 0; i < SMALL / JOBS_PER_BATCH; i++) await createBatch(svc, smallKey);
    await waitAllFinished(svc, "small");
    const small = await drainRate(svc, "small");
    svc.procs.worker.child.kill("SIGTERM");
    await svc.procs.worker.exited;
    const bigKey = await newUser(svc, "backlog");
    let made = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (made < BACKLOG) {
          made += JOBS_PER_BATCH;
          await createBatch(svc, bigKey);
        }
      }),
    );
    svc.procs.worker = run("apps/worker/src/main.ts", workerEnv(svc), [], profArgs());
    await waitAllFinished(svc, "backlog");
    const big = await drainRate(svc, "backlog");

    // 4. GET /usage: a user with the backlog's history against a fresh user.
    const freshKey = await newUser(svc, "fresh");
    const usage = async (key: string) => {
      const xs: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        const res = await fetch(`${svc.url}/simulations/batch/usage`, { headers: { "X-API-Key": key } });
        await res.arrayBuffer();
        xs.push(performance.now() - t);
      }
      return pct(xs, 50);
    };
    await usage(freshKey);
    const usageFresh = await usage(freshKey);
    const usageBig = await usage(bigKey);

    console.log("");
    const list = (xs: number[], d = 0) => xs.map((x) => fmt(x, d)).join(", ");
    row(
      "raw BullMQ: 50 producers add + Worker(concurrency 50), no-op",
      `${fmt(median(pairs.map((p) => p.raw)))} jobs/s median (${list(pairs.map((p) => p.raw))}; ${RAW_JOBS} jobs each)`,
    );
    row(
      `end to end: ${E2E_BATCHES} batches x ${JOBS_PER_BATCH} from ${CLIENTS} clients`,
      `${fmt(median(pairs.map((p) => p.e2e)))} jobs/s median (${list(pairs.map((p) => p.e2e))})`,
    );
    row(
      "ratio end to end / raw BullMQ, per pair",
      `${fmt(median(pairs.map((p) => p.e2e / p.raw)), 3)} median (${list(
        pairs.map((p) => p.e2e / p.raw),
        3,
      )})   (issue: >= 0.25)`,
    );
    row(
      "transport alone: the roles' Redis work, no Postgres",
      `${fmt(median(pairs.map((p) => p.transport)))} jobs/s, ratio ${fmt(median(pairs.map((p) => p.transport / p.raw)), 3)} median (${list(
        pairs.map((p) => p.transport / p.raw),
        3,
      )})`,
    );
    row("  first round on a cold service, vs raw BullMQ before it", `${fmt(e2eCold)} jobs/s vs ${fmt(raw)}, ratio ${fmt(e2eCold / raw, 3)}`);
    row("create-batch(100), one client sequential", `p50 ${fmt(pct(seq, 50), 1)} ms   (issue: <= 20)`);
    row(
      `create-batch(100), ${CLIENTS} concurrent clients of one user`,
      `p50 ${fmt(pct(conc, 50), 1)} ms, p99 ${fmt(pct(conc, 99), 1)} ms   (issue: p99 <= 200)`,
    );
    row(`drain: ${BACKLOG}-job backlog vs ${SMALL}-job run`, `${fmt(big)} vs ${fmt(small)} jobs/s, ratio ${fmt(big / small, 2)}   (issue: >= 0.7)`);
    row(
      `GET /usage p50: ${BACKLOG + 0}-job user vs fresh user`,
      `${fmt(usageBig, 1)} vs ${fmt(usageFresh, 1)} ms, ratio ${fmt(usageBig / usageFresh, 2)}   (issue: <= 2)`,
    );
    console.log(`  CPU per job over the warm end-to-end rounds (ms):`);
    for (const k of Object.keys(spent) as (keyof typeof spent)[]) row(`    ${k}`, fmt(spent[k] / jobs, 2));
    row("Postgres transactions per job, warm end-to-end rounds", fmt(committed / jobs, 2));
    row("WAL flushes per job (whole server), same rounds", fmt(synced / jobs, 2));
  } finally {
    await svc.pg.end();
    if (process.env.BENCH_PROF_DIR) {
      for (const p of Object.values(svc.procs)) p.child.kill("SIGTERM");
      await Promise.all(Object.values(svc.procs).map((p) => p.exited));
    }
    if (process.env.BENCH_KEEP_OUTPUT) require("node:fs").writeFileSync("/tmp/api.out", svc.procs.api.output());
    await stopAll(Object.values(svc.procs));
    await svc.env.teardown();
    // The migrated template the test setup made for this run (jest's global teardown does this for tests).
    await globalTeardown();
  }
  process.exit(0);
}

function workerEnv(svc: Service): Record<string, string> {
  return {
    DATABASE_URL: svc.env.databaseUrl,
    REDIS_URL: svc.env.redisUrl,
    REDIS_PREFIX: svc.env.prefix,
    SIMBATCH_TEST_TEMPLATES: "1",
    SIM_STEP_MS: "0",
    WORKER_CONCURRENCY: String(CONCURRENCY),
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
  };
}

type CommandStats = Map<string, { calls: number; usec: number }>;

/**
 * BENCH_REDIS_COMMANDS=1: Redis' own counts (INFO commandstats) summed over the warm
 * end-to-end rounds only (the raw BullMQ rounds between them are left out), per job.
 * Scripts count under `evalsha`; the commands they run count again under their names.
 */
class RedisCommands {
  private readonly redis = createRedis({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" }, "consumer");
  private readonly total: CommandStats = new Map();
  private before: CommandStats = new Map();

  private async read(): Promise<CommandStats> {
    const info = await this.redis.info("commandstats");
    const out: CommandStats = new Map();
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    return out;
  }
  async start(): Promise<void> {
    this.before = await this.read();
  }
  async stop(): Promise<void> {
    for (const [cmd, now] of await this.read()) {
      const was = this.before.get(cmd) ?? { calls: 0, usec: 0 };
      const t = this.total.get(cmd) ?? { calls: 0, usec: 0 };
      this.total.set(cmd, { calls: t.calls + now.calls - was.calls, usec: t.usec + now.usec - was.usec });
    }
  }
  async print(jobs: number): Promise<void> {
    const rows = [...this.total].filter(([, t]) => t.calls > 0).sort((a, b) => b[1].usec - a[1].usec);
    console.log("  Redis commands of the warm rounds, per job (calls, µs inside Redis):");
    for (const [cmd, t] of rows.slice(0, 20)) console.log(`  ${cmd.padEnd(24)} ${fmt(t.calls / jobs, 2).padStart(7)} ${fmt(t.usec / jobs, 1).padStart(7)}`);
    this.redis.disconnect();
  }
}

/** Resets pg_stat_statements now; print() lists what ran since, costliest first. */
async function pgStatements(pg: Client): Promise<{ print: () => Promise<void> }> {
  await pg.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  await pg.query("SELECT pg_stat_statements_reset()");
  return {
    print: async () => {
      const r = await pg.query(
        `SELECT calls, rows, total_exec_time::float8 AS ms, total_plan_time::float8 AS plan, toplevel, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS q
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY total_exec_time + total_plan_time DESC LIMIT 20`,
      );
      console.log(
        "  Postgres statements of the warm rounds (calls, rows, total ms executing, total ms planning (with track_planning), T = top level / n = nested):",
      );
      for (const x of r.rows)
        console.log(
          `  ${String(x.calls).padStart(7)} ${String(x.rows).padStart(7)} ${fmt(x.ms, 1).padStart(8)} ${fmt(x.plan, 1).padStart(8)} ${x.toplevel ? "T" : "n"} ${x.q}`,
        );
    },
  };
}

/** BENCH_PROF_DIR=dir: each role writes a V8 CPU profile there when it stops. */
function profArgs(): string[] {
  const dir = process.env.BENCH_PROF_DIR;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
