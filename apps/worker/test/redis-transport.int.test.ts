import { randomBytes } from "node:crypto";
import type { JobEvent } from "@simbatch/contracts";
import { createRedis, EventStream, StopSignals, type Redis } from "@simbatch/queue";
import { REDIS_URL } from "@simbatch/testing";

describe("EventStream.publish", () => {
  let redis: Redis;
  const key = `t${randomBytes(4).toString("hex")}:events`;
  const ev = (i: number): JobEvent => ({
    type: "progress",
    jobId: `sim_${i}`,
    attempt: 1,
    at: new Date().toISOString(),
    requestId: null,
    costMicros: i,
    tokens: 0,
    progress: 1,
    step: null,
  });

  beforeAll(() => {
    redis = createRedis({ url: REDIS_URL }, "consumer");
  });
  afterAll(async () => {
    await redis.del(key);
    redis.disconnect();
  });

  it("sends the events of one tick in one pipeline, in order, and resolves every caller after it", async () => {
    const stream = new EventStream(redis, key, "g");
    await stream.ensureGroup();
    const pipeline = jest.spyOn(redis, "pipeline");
    const xadd = jest.spyOn(redis, "xadd");
    await Promise.all(Array.from({ length: 20 }, (_, i) => stream.publish(ev(i))));
    expect(pipeline).toHaveBeenCalledTimes(1);
    expect(xadd).not.toHaveBeenCalled();
    const read = await stream.read("c", 100, 10);
    expect(read.map((e) => e.event?.jobId)).toEqual(Array.from({ length: 20 }, (_, i) => `sim_${i}`));

    // Alone in its tick: one pipeline as well (its XADD and the stream's expiry pushed out).
    await stream.publish(ev(99));
    expect(pipeline).toHaveBeenCalledTimes(2);
    expect(xadd).not.toHaveBeenCalled();
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(6 * 24 * 3600 * 1000);
    pipeline.mockRestore();
    xadd.mockRestore();
  });

  it("rejects every caller of a flush that fails", async () => {
    const broken = createRedis({ url: REDIS_URL }, "consumer");
    await broken.ping();
    broken.disconnect();
    const stream = new EventStream(broken, key, "g");
    const outcomes = await Promise.allSettled([stream.publish(ev(1)), stream.publish(ev(2)), stream.publish(ev(3))]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected"]);
  });
});

describe("StopSignals.stepBoundary", () => {
  let redis: Redis;
  const prefix = `t${randomBytes(4).toString("hex")}`;

  beforeAll(() => {
    redis = createRedis({ url: REDIS_URL }, "consumer");
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("answers each job of a tick on its own, in one pipeline", async () => {
    const signals = new StopSignals(redis, prefix);
    await signals.requestStop(["sim_cancelled"]);
    const pipeline = jest.spyOn(redis, "pipeline");
    const capped = { id: "bat_capped", capMicros: 100 };
    const verdicts = await Promise.all([
      signals.stepBoundary("sim_free", null, 5),
      signals.stepBoundary("sim_cancelled", null, 5),
      signals.stepBoundary("sim_a", capped, 60),
      signals.stepBoundary("sim_b", capped, 60),
      signals.stepBoundary("sim_c", { id: "bat_other", capMicros: 1_000 }, 60),
    ]);
    expect(pipeline).toHaveBeenCalledTimes(1);
    pipeline.mockRestore();
    expect(verdicts).toEqual(["continue", "cancelled", "continue", "budget", "continue"]);
    // Once exhausted, every job of the batch stops, whatever it adds.
    expect(await signals.stepBoundary("sim_d", capped, 0)).toBe("budget");
    expect(await redis.hget(`${prefix}:batch-spend:bat_capped`, "spent")).toBe("120");
  });
});
