import { periodOf, redisKeys } from "@simbatch/contracts";
import { Stack } from "../support/stack.ts";

/** API-call counts outlive an API restart and a lost Redis key; RATE_LIMIT_ENABLED=false. */
describe("API-call counting", () => {
  const stack = new Stack({ workers: [1], rateLimitEnabled: false, limits: { free: { ratePerMinute: 2, apiCalls: 1_000 } } });
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  const call = (key: string) => stack.http().get("/simulations").set("X-API-Key", key);
  /** The usage route's count: the usage call itself counts, so it is included. */
  const used = async (key: string) => (await stack.http().get("/simulations/batch/usage").set("X-API-Key", key)).body.api_calls_used as number;
  const stored = async (userId: string) =>
    Number((await stack.env.core.db.usagePeriod.findUnique({ where: { userId_period: { userId, period: periodOf(new Date()) } } }))?.apiCalls ?? 0);

  it("keeps counts across an API restart (flushed on the way out)", async () => {
    const u = await stack.env.user("restarter", "free");
    for (let i = 0; i < 4; i++) expect((await call(u.key)).status).toBe(200);
    // Counted in Redis only: the hot path writes nothing to Postgres.
    expect(await stored(u.id)).toBe(0);
    await stack.restartApi();
    expect(await stored(u.id)).toBe(4);
    expect(await used(u.key)).toBe(5);
    expect((await call(u.key)).status).toBe(200);
    expect(await used(u.key)).toBe(7);
  });

  it("re-seeds a deleted Redis counter from Postgres plus the calls not yet flushed", async () => {
    const u = await stack.env.user("amnesiac", "free");
    for (let i = 0; i < 3; i++) await call(u.key);
    await stack.flusher.flushNow();
    for (let i = 0; i < 2; i++) await call(u.key);
    expect(await stored(u.id)).toBe(3);
    const live = redisKeys(stack.env.prefix).apiCalls(u.id, periodOf(new Date()));
    expect(await stack.env.core.redis.del(live)).toBe(1);
    // Re-seeded: 3 flushed + 2 pending, then this usage call.
    expect(await used(u.key)).toBe(6);
    await call(u.key);
    await stack.flusher.flushNow();
    expect(await stored(u.id)).toBe(7);
    expect(await used(u.key)).toBe(8);
  });

  it("does not rate-limit when RATE_LIMIT_ENABLED=false, while quotas still count", async () => {
    const u = await stack.env.user("unlimited-rate", "free");
    for (let i = 0; i < 5; i++) {
      const r = await call(u.key);
      expect(r.status).toBe(200);
      expect(r.headers["ratelimit-policy"]).toBeUndefined();
    }
    expect(await used(u.key)).toBe(6);
  });
});
