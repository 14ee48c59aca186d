import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "./generated/client.ts";

export type Db = PrismaClient;
export type Tx = Prisma.TransactionClient;
export type DbOrTx = Db | Tx;

export interface DbOptions {
  url: string;
  /** Pool size per process; default 10. */
  poolSize?: number;
}

export function createDb(opts: DbOptions): Db {
  const adapter = new PrismaPg({ connectionString: opts.url, max: opts.poolSize ?? 10 });
  return new PrismaClient({ adapter });
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
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.$transaction(fn, { timeout: 30_000, maxWait: 10_000 });
    } catch (err) {
      if (attempt >= attempts || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
    }
  }
}
