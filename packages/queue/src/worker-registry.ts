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
    const list = await this.list();
    return { workers: list.length, capacity: list.reduce((sum, w) => sum + w.concurrency, 0) };
  }

  /** Each live worker process (its id is also its BullMQ worker name) and its concurrency, by id; drops expired entries. */
  async list(): Promise<{ id: string; concurrency: number }[]> {
    const all = await this.redis.hgetall(this.key);
    const now = Date.now();
    const live: { id: string; concurrency: number }[] = [];
    const expired: string[] = [];
    for (const [id, value] of Object.entries(all)) {
      const [conc, until] = value.split(":").map(Number) as [number, number];
      if (until < now) expired.push(id);
      else live.push({ id, concurrency: conc });
    }
    if (expired.length > 0) await this.redis.hdel(this.key, ...expired);
    return live.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
