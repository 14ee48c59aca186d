import { createDb, isDatabaseUnavailable, isRecordNotFound, Prisma } from "@simbatch/db";
import { AppError, ERROR_CODES, ERROR_STATUS } from "@simbatch/errors";
import { ErrorBodySchema } from "@simbatch/contracts";
import { createRedis, isRedisUnavailable } from "@simbatch/queue";
import { MaxRetriesPerRequestError } from "ioredis/built/errors/index.js";
import { toAppError } from "../src/http/errors.ts";

/** Status the API answers for a thrown value: the AppError's, else 500 (a bug). */
const statusOf = (err: unknown): number => toAppError(err)?.status ?? 500;

const known = (code: string, meta?: Record<string, unknown>) =>
  new Prisma.PrismaClientKnownRequestError(`prisma says ${code}`, { code, clientVersion: "test", meta });
/** What @prisma/adapter-pg puts behind a raw query's P2010. */
const rawFailure = (cause: Record<string, unknown>) => known("P2010", { driverAdapterError: Object.assign(new Error(String(cause.kind)), { cause }) });
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code, syscall: "connect", errno: -111 });

describe("outage classification (503 vs 500)", () => {
  it.each([
    ["P1001 can't reach database", known("P1001")],
    ["P1017 server closed the connection", known("P1017")],
    ["P2024 connection pool timeout", known("P2024")],
    ["P2037 too many connections", known("P2037")],
    ["raw query, database not reachable", rawFailure({ kind: "DatabaseNotReachable", host: "127.0.0.1", port: 1 })],
    ["raw query, connection closed", rawFailure({ kind: "ConnectionClosed" })],
    ["raw query, socket timeout", rawFailure({ kind: "SocketTimeout" })],
    ["raw query, session terminated (57P01)", rawFailure({ kind: "postgres", code: "57P01", originalCode: "57P01" })],
    ["raw query, connection exception (08006)", rawFailure({ kind: "postgres", code: "08006", originalCode: "08006" })],
    ["initialization error P1001", new Prisma.PrismaClientInitializationError("cannot connect", "test", "P1001")],
    ["pg socket error", socketError("ECONNREFUSED")],
  ])("Postgres: %s is a 503", (_label, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(statusOf(err)).toBe(503);
    expect(toAppError(err)!.code).toBe("ServiceUnavailable");
  });

  it.each([
    ["MaxRetriesPerRequestError", new MaxRetriesPerRequestError(1)],
    ["connection closed", new Error("Connection is closed.")],
    ["offline queue disabled", new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ["connect ETIMEDOUT", socketError("ETIMEDOUT")],
    ["wrapped in a cause", new Error("queue add failed", { cause: new MaxRetriesPerRequestError(1) })],
  ])("Redis: %s is a 503", (_label, err) => {
    expect(isRedisUnavailable(err)).toBe(true);
    expect(statusOf(err)).toBe(503);
  });

  it.each([
    ["a unique violation (P2002)", known("P2002")],
    ["record not found (P2025)", known("P2025")],
    ["a missing table (P2021)", known("P2021")],
    ["a raw query's SQL error (division by zero)", rawFailure({ kind: "postgres", code: "22012", originalCode: "22012" })],
    ["a validation error", new Prisma.PrismaClientValidationError("bad argument", { clientVersion: "test" })],
    ["a Redis reply error", Object.assign(new Error("ERR unknown command"), { name: "ReplyError" })],
    // Text alone no longer decides: a bug whose message mentions an outage stays a 500.
    ["a plain error that merely mentions ECONNREFUSED", new Error("ECONNREFUSED Can't reach database server P1001")],
    ["a TypeError", new TypeError("x is undefined")],
    ["a thrown string", "boom"],
    ["undefined", undefined],
  ])("%s is a 500", (_label, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
    expect(isRedisUnavailable(err)).toBe(false);
    expect(statusOf(err)).toBe(500);
  });

  it("tells a missing record (P2025) from every other database error", () => {
    expect(isRecordNotFound(known("P2025"))).toBe(true);
    expect(isRecordNotFound(known("P1001"))).toBe(false);
    expect(isRecordNotFound(new Error("Record to update not found"))).toBe(false);
  });

  it("classifies what the drivers really throw when nothing listens", async () => {
    const db = createDb({ url: "postgresql://postgres@127.0.0.1:1/nothing" });
    const redis = createRedis({ url: "redis://127.0.0.1:1" }, "producer");
    try {
      const errors = await Promise.all([
        db.user.findUnique({ where: { id: "x" } }).catch((e: unknown) => e), // P1001
        db.$queryRaw`SELECT 1`.catch((e: unknown) => e), // P2010 + DatabaseNotReachable
        db.$transaction(async (tx) => tx.user.findMany()).catch((e: unknown) => e),
      ]);
      for (const err of errors) expect(statusOf(err)).toBe(503);
      redis.disconnect();
      const redisErr = await redis.get("x").catch((e: unknown) => e);
      expect(statusOf(redisErr)).toBe(503);
    } finally {
      redis.disconnect();
      await db.$disconnect();
    }
  });

  it("classifies what a Redis Cluster client throws when no node answers", async () => {
    const cluster = createRedis({ url: "redis://127.0.0.1:1", clusterNodes: [{ host: "127.0.0.1", port: 1 }] }, "producer");
    try {
      const err = await cluster.get("{t}:x").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(statusOf(err)).toBe(503);
    } finally {
      cluster.disconnect();
    }
  });
});

describe("AppError", () => {
  it("keeps the log's message apart from the client's", () => {
    const err = toAppError(known("P1001"))!;
    expect(err.message).not.toContain("P1001");
    expect(err.internalMessage).toContain("P1001");
    const plain = new AppError("NotFound", { message: "User x not found" });
    expect(plain.internalMessage).toBe("User x not found");
  });

  it("has one list of error codes, which the wire schema accepts", () => {
    expect(ERROR_CODES).toEqual(Object.keys(ERROR_STATUS));
    for (const code of ERROR_CODES) {
      const body = { error: code, message: "m", detail: code === "ValidationError" ? [] : null, request_id: "r" };
      expect(ErrorBodySchema.safeParse(body).error?.issues.filter((i) => i.path[0] === "error") ?? []).toEqual([]);
    }
    expect(ErrorBodySchema.safeParse({ error: "NoSuchCode", message: "m", detail: null, request_id: "r" }).success).toBe(false);
  });
});
