import pg from "pg";
import { Prisma } from "./generated/client.ts";

/**
 * How Postgres failures are told apart, by Prisma error code and driver error
 * kind, never by the text of a message (but for pg's own connection errors, which
 * carry nothing else: see isPgOutage).
 *
 * Through @prisma/adapter-pg an outage surfaces as a PrismaClientKnownRequestError:
 * model queries and transactions carry the connection code (P1001 when the
 * server cannot be reached, P1017 when it closed the connection, ...); raw
 * queries ($queryRaw, $executeRaw) carry P2010 with the adapter's error in
 * `meta.driverAdapterError`, whose `cause.kind` says what happened
 * ("DatabaseNotReachable", "ConnectionClosed", ...) or, for other server
 * errors, the SQLSTATE (57P01 when an administrator or a restart ends the
 * session).
 */

/** Prisma codes that mean "the database cannot serve now", not "this request is wrong". */
const OUTAGE_CODES = new Set([
  "P1001", // can't reach database server
  "P1002", // database server reached but timed out
  "P1008", // operation timed out (socket timeout)
  "P1011", // error opening a TLS connection
  "P1017", // server has closed the connection
  "P2024", // timed out fetching a connection from the pool
  "P2037", // too many database connections opened
]);

/** @prisma/adapter-pg's `DriverAdapterError.cause.kind` values for the same conditions. */
const OUTAGE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TlsConnectionError", "TooManyConnections"]);

/**
 * Postgres SQLSTATEs of a server going away or full: class 08 (connection exception),
 * 57P01-57P03 (shutdown, crash, starting up) and 53300 (too many connections).
 */
const isOutageSqlState = (code: string): boolean => code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";

/** Node socket errors (from pg before the adapter maps them). */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EPIPE", "EAI_AGAIN"]);

/** A raw statement of the direct path (raw.ts) failed because Postgres cannot be reached or went away (a 503). */
export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`database unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "DatabaseUnavailableError";
  }
}

/**
 * What node-postgres throws when the server is gone: a server error with an outage
 * SQLSTATE, a socket error with its system code, or one of pg's own errors for a
 * connection that ended or could not be had from the pool in time. Those last carry
 * no code, so they are the one place told apart by their text (pg raises them only
 * from its connection handling).
 */
export function isPgOutage(err: unknown): boolean {
  if (err instanceof pg.DatabaseError) return isOutageSqlState(err.code ?? "");
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === "string" && SOCKET_CODES.has(e.code)) return true;
  const msg = typeof e?.message === "string" ? e.message : "";
  return /^Connection terminated|^timeout exceeded when trying to connect|^Client has encountered a connection error/.test(msg);
}

interface DriverCause {
  kind?: unknown;
  code?: unknown;
  originalCode?: unknown;
}

/** The adapter's error behind a Prisma error, when there is one. */
function driverCause(err: Prisma.PrismaClientKnownRequestError): DriverCause | undefined {
  return (err.meta as { driverAdapterError?: { cause?: DriverCause } } | undefined)?.driverAdapterError?.cause;
}

function isOutageCause(cause: DriverCause): boolean {
  if (typeof cause.kind === "string" && OUTAGE_KINDS.has(cause.kind)) return true;
  const sqlState = cause.originalCode ?? cause.code;
  return typeof sqlState === "string" && isOutageSqlState(sqlState);
}

/** True when `err` says Postgres is down or out of connections (a 503), false for every other error (a bug or a bad request). */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e != null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DatabaseUnavailableError) return true;
    if (e instanceof Prisma.PrismaClientKnownRequestError) {
      if (OUTAGE_CODES.has(e.code)) return true;
      const cause = driverCause(e);
      return cause !== undefined && isOutageCause(cause);
    }
    if (e instanceof Prisma.PrismaClientInitializationError) return e.errorCode !== undefined && OUTAGE_CODES.has(e.errorCode);
    if (e instanceof Prisma.PrismaClientRustPanicError || e instanceof Prisma.PrismaClientValidationError) return false;
    // pg's own errors, should one reach us unwrapped.
    if (isPgOutage(e)) return true;
  }
  return false;
}

/** True when a model operation failed because the record it needs does not exist (Prisma P2025). */
export function isRecordNotFound(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2025";
}
