import { Prisma } from "./generated/client.ts";
import { DatabaseUnavailableError } from "./raw.ts";

/**
 * How Postgres failures are told apart, by Prisma error code and driver error
 * kind, never by the text of a message.
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

/** Postgres SQLSTATEs of a server going away: class 08 (connection exception) and 57P01-57P03 (shutdown, crash, starting up). */
const isOutageSqlState = (code: string): boolean => code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03";

/** Node socket errors (from pg before the adapter maps them). */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EPIPE", "EAI_AGAIN"]);

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
    // pg's own errors, should one reach us unwrapped: a socket error carries its system code.
    const sys = e as { code?: unknown; syscall?: unknown };
    if (typeof sys.code === "string" && typeof sys.syscall === "string" && SOCKET_CODES.has(sys.code)) return true;
  }
  return false;
}

/** True when a model operation failed because the record it needs does not exist (Prisma P2025). */
export function isRecordNotFound(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2025";
}
