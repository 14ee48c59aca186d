import { Redis, type RedisOptions } from "ioredis";

export type { Redis };

/**
 * Producers (API) fail fast when Redis is down instead of queueing commands in
 * memory; blocking consumers (BullMQ workers, stream readers) need
 * maxRetriesPerRequest null so they wait through a reconnect.
 */
export function createRedis(url: string, role: "producer" | "consumer"): Redis {
  const opts: RedisOptions =
    role === "producer"
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 }
      : { maxRetriesPerRequest: null, enableReadyCheck: true };
  const redis = new Redis(url, { ...opts, lazyConnect: false });
  // Connection errors surface through commands and /ready; keep the process alive.
  redis.on("error", () => undefined);
  return redis;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitReady(redis: Redis, timeoutMs = 5_000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("redis not ready")), timeoutMs);
    redis.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
