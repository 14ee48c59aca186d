import { Cluster, Redis as RedisServer, type ClusterOptions, type RedisOptions } from "ioredis";

/** A connection to one Redis server or to a Redis Cluster; everything in the service takes either. */
export type Redis = RedisServer | Cluster;

export interface RedisNode {
  host: string;
  port: number;
}

/**
 * Where Redis is. With `clusterNodes`, every connection is an ioredis Cluster
 * seeded from them, authenticating with `url`'s user and password (and TLS when
 * its scheme is `rediss:`); without, `url` is the one server.
 */
export interface RedisTarget {
  url: string;
  clusterNodes?: readonly RedisNode[] | null;
}

/**
 * `producer` (API): commands fail fast when Redis is down instead of queueing in
 * memory. `consumer` (workers, stream readers, subscribers, the reconciler):
 * maxRetriesPerRequest null, so blocking reads and BullMQ workers wait through
 * a reconnect or a Cluster failover.
 */
export type RedisRole = "producer" | "consumer";

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  producer: { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 },
  consumer: { maxRetriesPerRequest: null, enableReadyCheck: true },
};

/** Credentials and TLS of a Cluster's nodes, from REDIS_URL (its host, port and db are not used). */
function nodeOptions(url: string): RedisOptions {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/**
 * The one place a Redis connection is made (BullMQ queues and workers get theirs
 * from here too, as `connection`). A second connection for blocking reads or
 * pub/sub: `duplicateRedis` of one of these, or `createRedis` with the same target.
 */
export function createRedis(target: RedisTarget, role: RedisRole): Redis {
  const opts = ROLE_OPTIONS[role];
  let redis: Redis;
  if (target.clusterNodes && target.clusterNodes.length > 0) {
    const clusterOpts: ClusterOptions = {
      redisOptions: { ...opts, ...nodeOptions(target.url) },
      // The cluster-level switch is what makes a producer's command fail at once
      // while no node is reachable (the node-level one covers a known node down).
      enableOfflineQueue: role !== "producer",
      enableReadyCheck: true,
      lazyConnect: false,
    };
    redis = new Cluster(
      target.clusterNodes.map((n) => ({ host: n.host, port: n.port })),
      clusterOpts,
    );
  } else {
    redis = new RedisServer(target.url, { ...opts, lazyConnect: false });
  }
  // Connection errors surface through commands and /ready; keep the process alive.
  redis.on("error", () => undefined);
  return redis;
}

/** Another connection like `redis` (same server or Cluster, same role options): for a subscriber or a blocking reader. */
export function duplicateRedis(redis: Redis): Redis {
  const copy = redis.duplicate();
  copy.on("error", () => undefined);
  return copy;
}

export function isCluster(redis: Redis): redis is Cluster {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/**
 * A raw command for a library that sends its own (rate-limit-redis). Scripts it
 * loads with SCRIPT LOAD and runs with EVALSHA: on a Cluster a script is loaded
 * on every master, so its sha answers on whichever node owns the key (a node
 * that lost it answers NOSCRIPT, on which the library loads it again).
 */
export async function sendCommand(redis: Redis, command: string, ...args: (string | number)[]): Promise<unknown> {
  if (isCluster(redis) && command.toUpperCase() === "SCRIPT" && String(args[0]).toUpperCase() === "LOAD") {
    const masters = redis.nodes("master");
    if (masters.length > 0) return (await Promise.all(masters.map((node) => node.call(command, ...args))))[0];
  }
  return redis.call(command, ...args);
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
