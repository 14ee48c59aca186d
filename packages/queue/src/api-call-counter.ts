import { redisKeys } from "@simbatch/contracts";
import type { Redis } from "./redis.ts";

/**
 * Check-and-increment in one round trip, so concurrent requests of one user on
 * any replica can never both take the last call. The live key holds the
 * period's whole count (flushed + pending + adjustments); the dirty hash holds
 * only what Postgres has not seen yet. A missing live key returns -1: the caller
 * seeds it from Postgres and tries again (Redis keeps nothing on disk here).
 * KEYS: live, dirty. ARGV: limit (-1 = unlimited), field, ttl seconds.
 * Returns {allowed 1|0, count after (or at refusal)}.
 */
const CONSUME = `
local cur = redis.call('GET', KEYS[1])
if not cur then return {-1, 0} end
cur = tonumber(cur)
local limit = tonumber(ARGV[1])
if limit >= 0 and cur >= limit then return {0, cur} end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {1, n}`;

/** Seeds the live key unless another replica did first; pending calls not yet flushed are added. */
const SEED = `
if redis.call('EXISTS', KEYS[1]) == 1 then return tonumber(redis.call('GET', KEYS[1])) end
local pending = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local n = tonumber(ARGV[1]) + pending
redis.call('SET', KEYS[1], n, 'EX', ARGV[3])
return n`;

/** Takes every pending delta at once, so a flush never writes one twice. */
const TAKE = `
local all = redis.call('HGETALL', KEYS[1])
if #all > 0 then redis.call('DEL', KEYS[1]) end
return all`;

/** Adjustments move a live key only if it exists; a missing one is seeded with them from Postgres. */
const ADJUST = `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false`;

/**
 * Moves a user's live API-call count of a period by an operator adjustment already
 * written to Postgres (the quota gate reads the live count); a count not in Redis
 * yet is seeded later from Postgres, adjustment included. The admin CLI calls it
 * without a counter.
 */
export async function adjustLiveApiCalls(redis: Redis, prefix: string, userId: string, period: string, delta: number): Promise<void> {
  await redis.eval(ADJUST, 1, redisKeys(prefix).apiCalls(userId, period), String(delta));
}

export interface PendingCalls {
  userId: string;
  period: string;
  calls: number;
}

export interface ApiCallCounterOptions {
  redis: Redis;
  prefix: string;
  /** Count of the period as Postgres knows it (flushed calls + adjustments). */
  loadBase(userId: string, period: string): Promise<number>;
  /** Adds flushed deltas to Postgres; must be one transaction (all or nothing). */
  persist(rows: PendingCalls[]): Promise<void>;
}

export interface ConsumeResult {
  allowed: boolean;
  /** Calls counted in the period, this one included when allowed. */
  used: number;
}

// Live keys outlive their period by a margin, so late requests and flushes around
// a rollover still find them; Postgres is the record after that.
const TTL_SECONDS = 40 * 86_400;
const field = (userId: string, period: string) => `${period}|${userId}`;

/** API-call counting in Redis, flushed to Postgres `usage_periods` in batches. */
export class ApiCallCounter {
  private readonly keys;

  constructor(private readonly opts: ApiCallCounterOptions) {
    this.keys = redisKeys(opts.prefix);
  }

  /** Counts one call unless the limit (-1 = none) is already reached; a refused call is not counted. */
  async consume(userId: string, period: string, limit: number): Promise<ConsumeResult> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const [state, n] = (await this.eval(CONSUME, userId, period, String(limit))) as [number, number];
      if (state !== -1) return { allowed: state === 1, used: n };
      await this.seed(userId, period);
    }
    throw new Error("api-call counter could not be seeded");
  }

  /** Current count of the period (seeding the live key when missing). */
  async used(userId: string, period: string): Promise<number> {
    const cur = await this.opts.redis.get(this.keys.apiCalls(userId, period));
    return cur === null ? this.seed(userId, period) : Number(cur);
  }

  /** Applies an operator adjustment to the live count (call after it is in Postgres). */
  async adjust(userId: string, period: string, delta: number): Promise<void> {
    await adjustLiveApiCalls(this.opts.redis, this.opts.prefix, userId, period, delta);
  }

  /** Moves pending deltas to Postgres; on failure they are put back for the next flush. */
  async flush(): Promise<number> {
    const flat = (await this.opts.redis.eval(TAKE, 1, this.keys.apiCallsDirty)) as string[];
    const rows: PendingCalls[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const [period, userId] = flat[i]!.split("|") as [string, string];
      rows.push({ userId, period, calls: Number(flat[i + 1]) });
    }
    if (rows.length === 0) return 0;
    try {
      await this.opts.persist(rows);
    } catch (err) {
      const m = this.opts.redis.multi();
      for (const r of rows) m.hincrby(this.keys.apiCallsDirty, field(r.userId, r.period), r.calls);
      m.expire(this.keys.apiCallsDirty, TTL_SECONDS);
      await m.exec();
      throw err;
    }
    return rows.reduce((a, r) => a + r.calls, 0);
  }

  private async seed(userId: string, period: string): Promise<number> {
    const base = await this.opts.loadBase(userId, period);
    return Number(await this.eval(SEED, userId, period, String(base)));
  }

  private eval(script: string, userId: string, period: string, arg: string): Promise<unknown> {
    return this.opts.redis.eval(script, 2, this.keys.apiCalls(userId, period), this.keys.apiCallsDirty, arg, field(userId, period), String(TTL_SECONDS));
  }
}

/** Flushes every `intervalMs` and once more on stop; errors are reported, never thrown. */
export class ApiCallFlusher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly counter: ApiCallCounter,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flushNow().catch(this.onError), this.intervalMs);
    this.timer.unref();
  }

  /** Serialized, so a slow flush and the next tick never overlap. */
  flushNow(): Promise<number> {
    const next = this.running.catch(() => undefined).then(() => this.counter.flush());
    this.running = next;
    return next;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flushNow().catch(this.onError);
  }
}
