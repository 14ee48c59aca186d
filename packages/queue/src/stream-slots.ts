import type { Redis } from "./redis.ts";

/**
 * Open live streams per user, across every API process: a sorted set per user of
 * stream ids scored by their last heartbeat. A stream whose process died stops
 * beating and is dropped after `staleMs`, so a crash never holds a slot for good.
 */
export class StreamSlots {
  constructor(
    private readonly redis: Redis,
    private readonly keyOf: (userId: string) => string,
    private readonly staleMs: number,
  ) {}

  /** Takes a slot when fewer than `max` live streams are open; false otherwise. Atomic (one script). */
  async acquire(userId: string, streamId: string, max: number, now = Date.now()): Promise<boolean> {
    const got = (await this.redis.eval(
      `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
       if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
       redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
       redis.call('PEXPIRE', KEYS[1], ARGV[5])
       return 1`,
      1,
      this.keyOf(userId),
      String(now - this.staleMs),
      String(max),
      String(now),
      streamId,
      String(this.staleMs * 2),
    )) as number;
    return got === 1;
  }

  /** Keeps the given streams' slots alive (one call per user per heartbeat). */
  async beat(userId: string, streamIds: string[], now = Date.now()): Promise<void> {
    if (streamIds.length === 0) return;
    const key = this.keyOf(userId);
    const args = streamIds.flatMap((id) => [String(now), id]);
    await this.redis
      .multi()
      .zadd(key, "XX", ...args)
      .pexpire(key, this.staleMs * 2)
      .exec();
  }

  async release(userId: string, streamId: string): Promise<void> {
    await this.redis.zrem(this.keyOf(userId), streamId);
  }
}
