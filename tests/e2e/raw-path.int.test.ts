import { admitBatch, resolveSimulation } from "@simbatch/core";
import {
  createDb,
  DatabaseUnavailableError,
  inPreparedTransaction,
  inRawTransaction,
  inTransaction,
  isDatabaseUnavailable,
  prepared,
  Prisma,
  rawOf,
  type Db,
} from "@simbatch/db";
import { TestEnv, withAdminClient } from "@simbatch/testing";
import { freePort } from "../support/processes.ts";
import { scripted } from "../support/stack.ts";

/** The direct raw path (packages/db raw.ts): the values it returns, its transactions, its outages. */
describe("raw statements through pg", () => {
  const env = new TestEnv();
  let db: Db;
  beforeAll(async () => {
    await env.setup();
    db = env.core.db;
  });
  afterAll(() => env.teardown());

  it("returns each column type as the same statement through Prisma does", async () => {
    const q = Prisma.sql`
      SELECT 9007199254740993::bigint AS big, count(*) AS n, 7::int AS small, 1.5::float8 AS f, true AS yes, NULL::text AS nothing,
        '2026-11-30 21:24:10.123'::timestamp AS at, '2026-11-30 21:24:10.123+02'::timestamptz AS atz, '2026-02-01'::date AS day,
        '{"a":[1,2]}'::jsonb AS doc, ARRAY['x','y']::text[] AS names, 'enterprise'::"Tier" AS tier, ${"a"}::text AS param
      FROM (VALUES (1), (2)) v(x)`;
    const [direct] = await rawOf(db).$queryRaw<Record<string, unknown>[]>(q);
    const [viaPrisma] = await db.$queryRaw<Record<string, unknown>[]>(q);
    expect(direct).toEqual(viaPrisma);
    expect(direct).toMatchObject({ big: 9007199254740993n, n: 2n, at: new Date("2026-11-30T21:24:10.123Z"), day: new Date("2026-02-01T00:00:00Z") });
  });

  it("sends Date, bigint, array and null parameters as Prisma does", async () => {
    const at = new Date("2026-03-04T05:06:07.089Z");
    const sql = Prisma.sql`SELECT ${at}::timestamp AS at, ${12345678901234n}::bigint + 1 AS big, ${["p", "q"]}::text[] AS arr, ${null}::text AS n`;
    const [direct] = await rawOf(db).$queryRaw<Record<string, unknown>[]>(sql);
    expect(direct).toEqual({ at, big: 12345678901235n, arr: ["p", "q"], n: null });
    expect(direct).toEqual((await db.$queryRaw<Record<string, unknown>[]>(sql))[0]);
  });

  it("sends a Date as the same instant whatever the session's time zone", async () => {
    const at = new Date("2026-03-04T05:06:07.089Z");
    const [row] = await inRawTransaction(db, async (tx) => {
      await tx.$executeRaw`SET LOCAL TIME ZONE 'America/New_York'`;
      return tx.$queryRaw<{ same: boolean; wall: Date }[]>`
        SELECT ${at}::timestamptz = '2026-03-04 05:06:07.089+00'::timestamptz AS same, ${at}::timestamp AS wall`;
    });
    expect(row).toEqual({ same: true, wall: at });
  });

  it("commits a transaction's statements together, rolls all back on an error, and counts executed rows", async () => {
    await db.$executeRaw`CREATE TABLE raw_t (k text PRIMARY KEY, v int)`;
    const n = await inRawTransaction(db, async (tx) => {
      await tx.$executeRaw`INSERT INTO raw_t VALUES ('a', 1), ('b', 2)`;
      return tx.$executeRaw`UPDATE raw_t SET v = v + 10`;
    });
    expect(n).toBe(2);
    await expect(
      inRawTransaction(db, async (tx) => {
        await tx.$executeRaw`UPDATE raw_t SET v = 0`;
        throw new Error("refused halfway");
      }),
    ).rejects.toThrow("refused halfway");
    expect(await db.$queryRaw`SELECT k, v FROM raw_t ORDER BY k`).toEqual([
      { k: "a", v: 11 },
      { k: "b", v: 12 },
    ]);
  });

  it("runs a transaction that lost a deadlock again, so both writers get through", async () => {
    await db.$executeRaw`CREATE TABLE raw_d (k text PRIMARY KEY, v int)`;
    await db.$executeRaw`INSERT INTO raw_d VALUES ('x', 0), ('y', 0)`;
    let runs = 0;
    // Two transactions lock x and y in opposite orders, each waiting for the other's first lock.
    const locked = { a: false, b: false };
    const writer = (first: string, second: string, me: "a" | "b", other: "a" | "b") =>
      inRawTransaction(db, async (tx) => {
        runs++;
        await tx.$executeRaw`UPDATE raw_d SET v = v + 1 WHERE k = ${first}`;
        locked[me] = true;
        for (const deadline = Date.now() + 5_000; !locked[other] && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 5));
        await tx.$executeRaw`UPDATE raw_d SET v = v + 1 WHERE k = ${second}`;
      });
    await Promise.all([writer("x", "y", "a", "b"), writer("y", "x", "b", "a")]);
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(await db.$queryRaw`SELECT k, v FROM raw_d ORDER BY k`).toEqual([
      { k: "x", v: 2 },
      { k: "y", v: 2 },
    ]);
  });

  it("reports a server that is not there, and one that ends its sessions, as unavailable (a 503), not as a bug", async () => {
    const dead = createDb({ url: `postgresql://postgres@127.0.0.1:${await freePort()}/nothing` });
    const refused = await rawOf(dead).$queryRaw`SELECT 1`.catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DatabaseUnavailableError);
    expect(isDatabaseUnavailable(refused)).toBe(true);
    await dead.$disconnect();

    const victim = createDb({ url: env.databaseUrl, poolSize: 1 });
    const cut = inRawTransaction(
      victim,
      async (tx) => {
        const [me] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
        await withAdminClient((admin) => admin.query("SELECT pg_terminate_backend($1)", [me!.pid]));
        await tx.$queryRaw`SELECT 1`;
      },
      1,
    ).catch((e: unknown) => e);
    expect(isDatabaseUnavailable(await cut)).toBe(true);
    // The pool dropped the dead connection: the next statement gets a new one.
    expect(await rawOf(victim).$queryRaw`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    await victim.$disconnect();
    // A SQL error is the caller's bug, never an outage.
    expect(isDatabaseUnavailable(await rawOf(db).$queryRaw`SELECT nope`.catch((e: unknown) => e))).toBe(false);
  });

  it("ends a session left idle inside a transaction, so a stopped process cannot hold its row locks", async () => {
    await db.$executeRaw`CREATE TABLE raw_idle (k int PRIMARY KEY, v int)`;
    await db.$executeRaw`INSERT INTO raw_idle VALUES (1, 0)`;
    const stalled = createDb({ url: env.databaseUrl, poolSize: 1, idleInTransactionTimeoutMs: 300 });
    const limit = Prisma.sql`SELECT current_setting('idle_in_transaction_session_timeout') AS t`;
    try {
      // Both kinds of transaction: the direct path's and Prisma's (cancel, pause, single admissions).
      for (const [kind, open] of [
        ["raw", inRawTransaction],
        ["prisma", inTransaction],
      ] as const) {
        let locked!: () => void;
        const isLocked = new Promise<void>((r) => (locked = r));
        let resume!: () => void;
        const resumed = new Promise<void>((r) => (resume = r));
        const stopped = open(
          stalled,
          async (tx) => {
            expect(await tx.$queryRaw(limit)).toEqual([{ t: "300ms" }]);
            await tx.$executeRaw`UPDATE raw_idle SET v = -1 WHERE k = 1`;
            locked();
            await resumed; // the process "stops" here, holding the row lock
            await tx.$executeRaw`UPDATE raw_idle SET v = -2 WHERE k = 1`;
          },
          1,
        ).catch((e: unknown) => e);
        await Promise.race([isLocked, stopped.then((e) => Promise.reject(new Error(`${kind}: ended before it took the lock: ${String(e)}`)))]);
        // Another writer of the row gets through once Postgres ends the idle session (it would wait forever
        // otherwise; its own lock_timeout turns that into a failure of this test).
        await inRawTransaction(db, async (tx) => {
          await tx.$executeRaw`SET LOCAL lock_timeout = '15s'`;
          await tx.$executeRaw`UPDATE raw_idle SET v = v + 1 WHERE k = 1`;
        });
        resume();
        expect(isDatabaseUnavailable(await stopped)).toBe(true);
        // Nothing of the stopped transaction was kept, and its pool goes on with a new connection.
        expect(await rawOf(db).$queryRaw`SELECT v FROM raw_idle`).toEqual([{ v: kind === "raw" ? 1 : 2 }]);
        const next = rawOf(stalled).$queryRaw`SELECT 1 AS one`;
        const stuck = new Promise((r) => setTimeout(() => r("no connection in 10 s: the pool lost its only one"), 10_000).unref());
        expect(await Promise.race([next, stuck])).toEqual([{ one: 1 }]);
      }
      // The limit is the transaction's own: the session (and any other client of a pooled server connection) keeps its default.
      expect(await rawOf(stalled).$queryRaw(limit)).toEqual([{ t: "0" }]);
    } finally {
      await stalled.$disconnect();
    }
    const unlimited = createDb({ url: env.databaseUrl, poolSize: 1, idleInTransactionTimeoutMs: 0 });
    try {
      expect(await inRawTransaction(unlimited, (tx) => tx.$queryRaw(limit))).toEqual([{ t: "0" }]);
    } finally {
      await unlimited.$disconnect();
    }
  });

  it("runs a prepared statement by name, planned generically with sequential scans off, only in a transaction that asks for it", async () => {
    /** What the session sees: its named statements, and how it plans now. */
    const session = Prisma.sql`
      SELECT ARRAY(SELECT name FROM pg_prepared_statements WHERE name LIKE 'probe_%' ORDER BY name) AS names,
        current_setting('plan_cache_mode') AS mode, current_setting('enable_seqscan') AS seqscan`;
    const probe = (name: string) => prepared(name, Prisma.sql`SELECT ${41}::int + 1 AS n`);
    const inHot = (on: Db, name: string) =>
      inPreparedTransaction(on, async (tx) => {
        const [row] = await tx.$queryRaw<{ n: number }[]>(probe(name));
        return { n: row!.n, ...(await tx.$queryRaw<Record<string, unknown>[]>(session))[0] };
      });
    const one = createDb({ url: env.databaseUrl, poolSize: 1 });
    try {
      // Outside such a transaction a prepared statement is an ordinary one: no name, default planning.
      expect(await rawOf(one).$queryRaw(probe("probe_plain"))).toEqual([{ n: 42 }]);
      expect(await inRawTransaction(one, async (tx) => (await tx.$queryRaw<{ n: number }[]>(probe("probe_tx")))[0])).toEqual({ n: 42 });
      expect((await rawOf(one).$queryRaw<unknown[]>(session))[0]).toEqual({ names: [], mode: "auto", seqscan: "on" });
      // Inside one: parsed once under its name, the whole transaction planned generically without sequential scans.
      expect(await inHot(one, "probe_hot")).toEqual({ n: 42, names: ["probe_hot"], mode: "force_generic_plan", seqscan: "off" });
      expect(await inHot(one, "probe_hot")).toEqual({ n: 42, names: ["probe_hot"], mode: "force_generic_plan", seqscan: "off" });
      // The settings end with the transaction; the connection keeps the statement.
      expect((await rawOf(one).$queryRaw<unknown[]>(session))[0]).toEqual({ names: ["probe_hot"], mode: "auto", seqscan: "on" });
    } finally {
      await one.$disconnect();
    }
    // A server connection that lost the statement (what PgBouncer before 1.21 does in transaction mode) says what to change.
    const lost = createDb({ url: env.databaseUrl, poolSize: 1 });
    try {
      await inHot(lost, "probe_lost");
      await rawOf(lost).$executeRaw`DEALLOCATE probe_lost`;
      const err = await inHot(lost, "probe_lost").catch((e: unknown) => e);
      expect(String((err as Error).message)).toMatch(/prepared statement "probe_lost" does not exist.*DATABASE_PREPARED_STATEMENTS=false/);
    } finally {
      await lost.$disconnect();
    }
    // DATABASE_PREPARED_STATEMENTS=false (a pooler that cannot keep them): no names, no settings.
    const pooled = createDb({ url: env.databaseUrl, poolSize: 1, preparedStatements: false });
    try {
      expect(await inHot(pooled, "probe_pooled")).toEqual({ n: 42, names: [], mode: "auto", seqscan: "on" });
    } finally {
      await pooled.$disconnect();
    }
  });

  it("admits a batch in one statement for the tier authentication saw, and through the counted path once that tier changed", async () => {
    await env.user("was-enterprise", "enterprise");
    const sims = Array.from({ length: 3 }, (_, i) => {
      const r = resolveSimulation(env.core.catalog, scripted({ steps: 1 }), `simulations.${i}`);
      if (!r.ok) throw new Error("bad simulation");
      return r.value;
    });
    const opts = { parallelJobs: 3, failFast: false, budgetCapMicros: null, priority: 50, metadata: null };
    const ok = await admitBatch(env.core, "was-enterprise", sims, opts, null, "enterprise");
    expect(ok.created?.totalJobs).toBe(3);
    expect(await db.simulationJob.count({ where: { batchId: ok.created!.id } })).toBe(3);
    // Downgraded to free after authentication read "enterprise": free's batch limit (and quotas) apply.
    await db.user.update({ where: { id: "was-enterprise" }, data: { tier: "free" } });
    const many = Array.from({ length: env.core.limits.free.maxBatchSize + 1 }, () => sims[0]!);
    await expect(admitBatch(env.core, "was-enterprise", many, opts, null, "enterprise")).rejects.toMatchObject({ code: "BatchTooLarge" });
    expect(await db.batch.count({ where: { ownerId: "was-enterprise" } })).toBe(1);
  });
});
