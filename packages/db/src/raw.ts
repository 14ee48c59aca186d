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

const names = new WeakMap<Prisma.Sql, string>();

/**
 * Marks a statement to run as a named prepared statement on the direct path: each
 * connection parses it once and keeps one generic plan for it instead of planning
 * every call. For hot statements whose planning costs as much as running them. Only
 * a transaction opened by `inPreparedTransaction` (`{ preparedPlans: true }`) runs it
 * by its name, under settings that decide how that plan is made
 * (PREPARED_PLAN_SETTINGS); anywhere else
 * (outside such a transaction, or on a Prisma client) it is an ordinary statement,
 * planned per call. The name must belong to one statement text.
 */
export function prepared(name: string, sql: Prisma.Sql): Prisma.Sql {
  names.set(sql, name);
  return sql;
}

/**
 * Settings for the rest of a transaction opened with `{ preparedPlans: true }`: every
 * statement in it with parameters gets a generic plan, made with sequential and bitmap
 * scans off. A connection keeps a prepared statement's plan for its life, and on tables
 * nothing analyzes (a server with autovacuum off, a fresh deployment) a plan made from
 * their first, tiny statistics would otherwise be free to scan them sequentially for
 * good. Bitmap scans are off also because only a plain index scan marks the index
 * entries of finished jobs dead; a bitmap scan visits them again on every call when
 * nothing vacuums. Sent with BEGIN, in the same round trip.
 */
const PREPARED_PLAN_CONFIGS = [
  "set_config('plan_cache_mode', 'force_generic_plan', true)",
  "set_config('enable_seqscan', 'off', true)",
  "set_config('enable_bitmapscan', 'off', true)",
];
export const PREPARED_PLAN_SETTINGS = `SELECT ${PREPARED_PLAN_CONFIGS.join(", ")}`;

/**
 * Default of `idleInTransactionTimeoutMs` (DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS): our
 * transactions never wait on anything but their own statements and a few milliseconds of
 * this process's work between them, so a session idle inside one for this long belongs to
 * a process that stopped (SIGSTOP, a paused VM, a debugger) while it held row locks that
 * every worker's job end and every release need.
 */
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;

/**
 * What BEGIN's round trip also sends: the idle-in-transaction limit for this transaction
 * only (so it holds through a pooler in transaction mode, and touches no other client of
 * the database) and, for `preparedPlans`, PREPARED_PLAN_SETTINGS, in one SELECT (a second
 * statement would cost the server a few microseconds more per transaction).
 */
function beginStatement(idleTimeoutMs: number, preparedPlans: boolean): string {
  const settings = idleTimeoutMs > 0 ? [idleTimeoutSetting(idleTimeoutMs)] : [];
  if (preparedPlans) settings.push(...PREPARED_PLAN_CONFIGS);
  return settings.length > 0 ? `BEGIN; SELECT ${settings.join(", ")}` : "BEGIN";
}

/** `set_config` of the limit on how long this transaction's session may sit idle in it (0: no limit). */
function idleTimeoutSetting(ms: number): string {
  return `set_config('idle_in_transaction_session_timeout', '${Math.max(0, Math.floor(ms))}', true)`;
}

/** A statement that sets that limit (Prisma's transactions, which send their own BEGIN). */
export function idleTimeoutStatement(ms: number): string {
  return `SELECT ${idleTimeoutSetting(ms)}`;
}

export interface TransactionOptions {
  /**
   * Run `prepared` statements by name, every statement planned as PREPARED_PLAN_SETTINGS
   * says; a plain transaction when the client's prepared statements are off.
   */
  preparedPlans?: boolean;
}

async function run(on: Queryable, sql: Prisma.Sql, named = false): Promise<pg.QueryResult> {
  const name = named ? names.get(sql) : undefined;
  try {
    return await on.query({ name, text: sql.text, values: sql.values.map(param), types });
  } catch (err) {
    // 26000 (invalid_sql_statement_name): the server connection does not hold the statement this
    // client prepared, which is what a pooler in transaction mode that cannot keep them does.
    if (name && err instanceof pg.DatabaseError && err.code === "26000") {
      err.message +=
        " (named prepared statements need a direct connection, a session-mode pooler or PgBouncer 1.21+ with max_prepared_statements; set DATABASE_PREPARED_STATEMENTS=false otherwise)";
    }
    throw wrap(err);
  }
}

/** `named`: `prepared` statements run by their names (a transaction with `preparedPlans`). */
function rawOn(on: Queryable, named = false): Raw {
  return {
    async $queryRaw<T>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) {
      return (await run(on, toSql(query, values), named)).rows as T;
    },
    async $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]) {
      return (await run(on, toSql(query, values), named)).rowCount ?? 0;
    },
  };
}

const RETRYABLE = new Set(["40001", "40P01"]);

/** Raw statements straight through pg on a pool (the one the Prisma client uses). */
export class RawDb implements Raw {
  private readonly direct: Raw;
  private readonly preparedStatements: boolean;
  /** How long a session may sit idle inside one of this client's transactions before Postgres ends it; 0: no limit. */
  readonly idleInTransactionTimeoutMs: number;
  /** `preparedStatements` false: `{ preparedPlans: true }` opens a plain transaction (behind a pooler that cannot keep them). */
  constructor(
    private readonly pool: pg.Pool,
    opts: { preparedStatements?: boolean; idleInTransactionTimeoutMs?: number } = {},
  ) {
    this.direct = rawOn(pool);
    this.preparedStatements = opts.preparedStatements ?? true;
    this.idleInTransactionTimeoutMs = opts.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS;
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
  async transaction<T>(fn: (tx: Raw) => Promise<T>, attempts = 5, opts: TransactionOptions = {}): Promise<T> {
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
        const named = Boolean(opts.preparedPlans) && this.preparedStatements;
        // Without parameters a query goes by the simple protocol, so its statements take one round trip.
        await run(client, Prisma.raw(beginStatement(this.idleInTransactionTimeoutMs, named)));
        const out = await fn(rawOn(client, named));
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
