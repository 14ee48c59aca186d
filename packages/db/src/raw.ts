import pg from "pg";
import { Prisma } from "./generated/client.ts";
import { DatabaseUnavailableError, isPgOutage } from "./errors.ts";

/**
 * The raw-SQL surface the hot paths use: `$queryRaw` and `$executeRaw` as tagged
 * templates (or a composed `Prisma.Sql`). A Prisma client or transaction has it,
 * and so does the direct path below.
 *
 * Why a direct path: through Prisma 6's client engine every raw statement passes
 * its query interpreter (compiled to WASM) and the driver adapter, about 0.65 ms
 * of CPU per statement here against 0.19 ms for the same statement through `pg`
 * (bench/tmp measurements in docs/architecture.md). The job path runs a handful of
 * statements per job in each role, so that overhead was the largest single share
 * of the control plane's CPU. Prisma stays the schema, the migrations and the
 * client for everything else; the direct path shares its connection pool.
 */
export interface Raw {
  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T>;
  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number>;
}

const wrap = (err: unknown): unknown => (isPgOutage(err) ? new DatabaseUnavailableError(err) : err);

/** Column types parsed as Prisma's raw queries return them: int8 as bigint, timestamps (stored without zone) as UTC. */
const parsers: Record<number, (v: string) => unknown> = {
  20: (v) => BigInt(v),
  1114: (v) => new Date(`${v.replace(" ", "T")}Z`),
  1082: (v) => new Date(`${v}T00:00:00Z`),
};
const types = {
  getTypeParser: ((oid: number, format?: string) => parsers[oid] ?? pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

type Queryable = Pick<pg.Pool, "query"> | pg.PoolClient;

function toSql(query: TemplateStringsArray | Prisma.Sql, values: unknown[]): Prisma.Sql {
  return query instanceof Prisma.Sql ? query : Prisma.sql(query, ...values);
}

/**
 * Dates go as ISO text in UTC: a `timestamp` column (without zone, holding UTC as
 * Prisma writes it) takes the wall time and ignores the zone, a `timestamptz`
 * reads the zone, so neither depends on the session's TimeZone (node-postgres
 * itself would send the process's local time).
 */
const param = (v: unknown) => (v instanceof Date ? v.toISOString() : v);

async function run(on: Queryable, sql: Prisma.Sql): Promise<pg.QueryResult> {
  try {
    return await on.query({ text: sql.text, values: sql.values.map(param), types });
  } catch (err) {
    throw wrap(err);
  }
}

function rawOn(on: Queryable): Raw {
  return {
    async $queryRaw<T>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) {
      return (await run(on, toSql(query, values))).rows as T;
    },
    async $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) {
      return (await run(on, toSql(query, values))).rowCount ?? 0;
    },
  };
}

const RETRYABLE = new Set(["40001", "40P01"]);

/** Raw statements straight through pg on a pool (the one the Prisma client uses). */
export class RawDb implements Raw {
  private readonly direct: Raw;
  constructor(private readonly pool: pg.Pool) {
    this.direct = rawOn(pool);
  }
  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    return this.direct.$queryRaw<T>(query, ...values);
  }
  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    return this.direct.$executeRaw(query, ...values);
  }

  /**
   * Runs `fn` in a transaction on one connection; serialization failures and
   * deadlocks are retried (nothing was committed), up to `attempts` runs.
   */
  async transaction<T>(fn: (tx: Raw) => Promise<T>, attempts = 5): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw wrap(err);
      }
      let broken: Error | undefined;
      // A checked-out client whose server session ends emits 'error' (the statement in
      // flight fails too): unhandled, that event would end the process.
      const onError = (e: Error) => (broken ??= e);
      client.on("error", onError);
      try {
        await run(client, Prisma.sql`BEGIN`);
        const out = await fn(rawOn(client));
        await run(client, Prisma.sql`COMMIT`);
        return out;
      } catch (err) {
        await client.query("ROLLBACK").catch((e: Error) => (broken = e));
        if (err instanceof DatabaseUnavailableError) broken ??= err;
        const code = (err as { code?: unknown }).code;
        if (attempt >= attempts || typeof code !== "string" || !RETRYABLE.has(code)) throw err;
      } finally {
        client.removeListener("error", onError);
        client.release(broken);
      }
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
    }
  }
}
