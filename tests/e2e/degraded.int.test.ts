import request from "supertest";
import { buildGates, createApp, startUsageCounting } from "@simbatch/api";
import { createDb, type Db } from "@simbatch/db";
import { createRedis, SimulationQueue, type Redis } from "@simbatch/queue";
import { TestEnv } from "@simbatch/testing";
import { freePort } from "../support/processes.ts";

/** With Postgres or Redis unreachable the API refuses cleanly: 503, never a 500 or a half-write. */
describe("degraded dependencies", () => {
  const env = new TestEnv();
  let deadPort: number;
  const closers: (() => Promise<unknown> | void)[] = [];

  beforeAll(async () => {
    await env.setup();
    deadPort = await freePort(); // nothing listens here
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await env.teardown();
  });

  /** The API wired as main.ts wires it, on the given (possibly dead) clients. */
  function app(clients: { db?: Db; redis?: Redis; adminToken?: string }) {
    const db = clients.db ?? env.core.db;
    const redis = clients.redis ?? env.core.redis;
    const { counter, flusher } = startUsageCounting({ db, redis, redisPrefix: env.prefix, logger: env.core.logger, flushIntervalMs: 60_000 });
    closers.push(() => flusher.stop().catch(() => undefined));
    const gates = buildGates({ limits: env.core.limits, redis, redisPrefix: env.prefix, rateLimitEnabled: true });
    return createApp({
      ...env.core,
      db,
      redis,
      queue: new SimulationQueue(redis, env.prefix),
      config: { adminToken: clients.adminToken, maxBodyBytes: 1024 * 1024 },
      apiCalls: counter,
      gates,
    });
  }

  const deadRedis = () => {
    const r = createRedis({ url: `redis://127.0.0.1:${deadPort}` }, "producer");
    closers.push(() => r.disconnect());
    return r;
  };

  it("hides the admin API (404, as if absent) when ADMIN_TOKEN is unset", async () => {
    const res = await request(app({})).post("/admin/users").set("Authorization", "Bearer anything").send({ user_id: "x" });
    expect(res.status).toBe(404);
    expect(res.body.error).toBe("NotFound");
    expect((await request(app({})).get("/admin/metrics")).status).toBe(404);
  });

  it("reports Redis down on /ready with 503 naming it", async () => {
    const res = await request(app({ redis: deadRedis() })).get("/ready");
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: "ServiceUnavailable", detail: { postgres: "ok", redis: "down" } });
    expect(res.body.message).toContain("redis");
  });

  it("answers 503 when Postgres is unreachable, and /ready names it", async () => {
    const db = createDb({ url: `postgresql://postgres@127.0.0.1:${deadPort}/nothing` });
    closers.push(() => db.$disconnect());
    const a = app({ db });
    const ready = await request(a).get("/ready");
    expect(ready.status).toBe(503);
    expect(ready.body.detail).toMatchObject({ postgres: "down", redis: "ok" });
    const res = await request(a)
      .post("/simulations")
      .set("X-API-Key", `tp_${"a".repeat(32)}`)
      .send({ template_id: "board_meeting" });
    expect(res.status).toBe(503);
    expect(res.body.error).toBe("ServiceUnavailable");
    expect(res.headers["retry-after"]).toBeDefined();
    expect(res.body.request_id).toBe(res.headers["x-request-id"]);
  });

  it("refuses work with 503 and writes nothing when Redis is unreachable", async () => {
    const alice = await env.user("alice", "pro");
    const res = await request(app({ redis: deadRedis() }))
      .post("/simulations/batch")
      .set("X-API-Key", alice.key)
      .send({ simulations: [{ template_id: "board_meeting" }] });
    expect(res.status).toBe(503);
    expect(res.body.error).toBe("ServiceUnavailable");
    expect(await env.core.db.simulationJob.count({ where: { ownerId: alice.id } })).toBe(0);
    expect(await env.core.db.batch.count({ where: { ownerId: alice.id } })).toBe(0);
  });

  it("answers an unknown user's tier update with 404, and the same update with Postgres down with 503", async () => {
    const adminToken = "degraded-admin-token-0123456789abcdefghij";
    const patch = (a: ReturnType<typeof app>) =>
      request(a).patch("/admin/users/nobody-here").set("Authorization", `Bearer ${adminToken}`).send({ tier: "pro" });
    const missing = await patch(app({ adminToken }));
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe("NotFound");
    const db = createDb({ url: `postgresql://postgres@127.0.0.1:${deadPort}/nothing` });
    closers.push(() => db.$disconnect());
    const down = await patch(app({ db, adminToken }));
    expect(down.status).toBe(503);
    expect(down.body.error).toBe("ServiceUnavailable");
    expect(down.body.message).not.toContain(String(deadPort));
  });
});
