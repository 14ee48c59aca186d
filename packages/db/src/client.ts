import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { Prisma, PrismaClient } from "./generated/client.ts";
import { idleTimeoutStatement, RawDb, type Raw, type TransactionOptions } from "./raw.ts";

export type Db = PrismaClient;
export type Tx = Prisma.TransactionClient;
export type DbOrTx = Db | Tx;

export interface DbOptions {
  url: string;
  /** Pool size per process; default 10. */
  poolSize?: number;
  /** Run `prepared` statements by name (DATABASE_PREPARED_STATEMENTS); default true. */
  preparedStatements?: boolean;
  /**
   * DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: Postgres ends a session left idle inside one
   * of this client's transactions for longer (its process stopped while holding locks);
   * default DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS, 0 for no limit.
   */
  idleInTransactionTimeoutMs?: number;
}

const rawClients = new WeakMap<Db, RawDb>();

/**
 * Gives a checked-out connection back to the pool (which then drops it) as soon as its
 * server session ends, whoever holds it. Prisma's interactive transactions (6.19) send
 * ROLLBACK after a failed statement and release the connection only if that succeeds:
 * when the session itself is gone (a restart, an administrator, the idle-in-transaction
 * limit) the connection was never returned, and each such failure took a slot of the pool
 * for good. The holder's later release is then a no-op.
 */
function releaseWhenBroken(pool: pg.Pool): void {
  const watching = new WeakMap<pg.PoolClient, () => void>();
  pool.on("acquire", (client: pg.PoolClient) => {
    const onError = () => {
      const giveBack = client.release;
      let given = false;
      client.release = (err?: Error | boolean) => {
        if (given) return;
        given = true;
        giveBack(err);
      };
      client.release(true);
    };
    watching.set(client, onError);
    client.once("error", onError);
  });
  pool.on("release", (_err: unknown, client: pg.PoolClient) => {
    const onError = watching.get(client);
    if (!onError) return;
    watching.delete(client);
    client.removeListener("error", onError);
  });
}

/** A Prisma client and, on the same pg pool, the direct raw path (`rawOf`). */
export function createDb(opts: DbOptions): Db {
  const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 10 });
  // An idle connection the server ends (a restart, an administrator) is dropped by the
  // pool, which then emits 'error': without a listener that would end the process.
  // Prisma adds one only once it connects, and the direct path may never make it.
  pool.on("error", () => undefined);
  releaseWhenBroken(pool);
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  rawClients.set(db, new RawDb(pool, { preparedStatements: opts.preparedStatements ?? true, idleInTransactionTimeoutMs: opts.idleInTransactionTimeoutMs }));
  return db;
}

/** What the hot paths run raw statements and transactions on. */
export interface RawClient extends Raw {
  transaction<T>(fn: (tx: Raw) => Promise<T>, attempts?: number, opts?: TransactionOptions): Promise<T>;
}

/**
 * The direct raw path of a client made by createDb; for any other client (or a
 * transaction already open) the same surface through Prisma.
 */
export function rawOf(db: DbOrTx): RawClient {
  const direct = "$transaction" in db ? rawClients.get(db) : undefined;
  if (direct) return direct;
  return {
    $queryRaw: <T>(q: TemplateStringsArray | Prisma.Sql, ...v: unknown[]) => db.$queryRaw<T>(q, ...v),
    $executeRaw: (q: TemplateStringsArray | Prisma.Sql, ...v: unknown[]) => db.$executeRaw(q, ...v),
    transaction: (fn, attempts) => inTransaction(db, fn, attempts),
  };
}

/** inTransaction on the direct path: for hot paths whose statements are all raw. */
export function inRawTransaction<T>(db: Db, fn: (tx: Raw) => Promise<T>, attempts = 5): Promise<T> {
  return rawOf(db).transaction(fn, attempts);
}

/** inRawTransaction whose `prepared` statements run by name (TransactionOptions.preparedPlans). */
export function inPreparedTransaction<T>(db: Db, fn: (tx: Raw) => Promise<T>): Promise<T> {
  return rawOf(db).transaction(fn, 5, { preparedPlans: true });
}

const RETRYABLE_SQLSTATES = new Set(["40001", "40P01"]);

function isRetryable(err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2034") return true;
  const text = String((err as { message?: unknown })?.message ?? "");
  return [...RETRYABLE_SQLSTATES].some((code) => text.includes(code)) || /deadlock detected|could not serialize/i.test(text);
}

/**
 * Runs `fn` in a transaction, reusing one that is already open, and retries
 * serialization failures and deadlocks (both are safe to replay: nothing was
 * committed).
 */
export async function inTransaction<T>(db: DbOrTx, fn: (tx: Tx) => Promise<T>, attempts = 5): Promise<T> {
  if (!("$transaction" in db)) return fn(db);
  const client = db;
  // The same idle limit as the direct path's transactions (see RawDb); one round trip more here, off the hot paths.
  const idleMs = rawClients.get(client)?.idleInTransactionTimeoutMs ?? 0;
  const body =
    idleMs > 0
      ? async (tx: Tx) => {
          await tx.$queryRawUnsafe(idleTimeoutStatement(idleMs));
          return fn(tx);
        }
      : fn;
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.$transaction(body, { timeout: 30_000, maxWait: 10_000 });
    } catch (err) {
      if (attempt >= attempts || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
    }
  }
}
