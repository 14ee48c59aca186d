import type { Redis } from "./redis.ts";

/**
 * Live worker capacity. Each worker process heartbeats its concurrency with an
 * expiry; the dispatcher releases no more jobs than live capacity allows, so
 * waiting jobs stay in Postgres where priority and fairness are decided.
 */
export class WorkerRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  async heartbeat(workerId: string, concurrency: number, ttlMs: number): Promise<void> {
    // The hash lives as long as some worker beats: when the whole fleet is gone it expires.
    await this.redis
      .multi()
      .hset(this.key, workerId, `${concurrency}:${Date.now() + ttlMs}`)
      .pexpire(this.key, ttlMs)
      .exec();
  }

  async remove(workerId: string): Promise<void> {
    await this.redis.hdel(this.key, workerId);
  }

  /** Sum of live workers' concurrency; drops expired entries. */
  async capacity(): Promise<number> {
    return (await this.live()).capacity;
  }

  /** Live worker processes and their summed concurrency; drops expired entries. */
  async live(): Promise<{ workers: number; capacity: number }> {
    const all = await this.redis.hgetall(this.key);
    const now = Date.now();
    let total = 0;
    const expired: string[] = [];
    for (const [id, value] of Object.entries(all)) {
      const [conc, until] = value.split(":").map(Number) as [number, number];
      if (until < now) expired.push(id);
      else total += conc;
    }
    if (expired.length > 0) await this.redis.hdel(this.key, ...expired);
    return { workers: Object.keys(all).length - expired.length, capacity: total };
  }
}
