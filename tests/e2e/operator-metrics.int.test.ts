import { redisKeys, type JobEvent } from "@simbatch/contracts";
import { applyEvents, LOOKAHEAD_PER_SLOT, operationsSnapshot } from "@simbatch/core";
import { waitFor } from "@simbatch/testing";
import { Stack, scripted } from "../support/stack.ts";

const ADMIN = "operator-metrics-admin-token-0123456789";

/** The exposition's value of one series, written as it prints (`name{labels}`); undefined when absent. */
function series(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * The metrics an operator alerts and autoscales on (issue 12, part 3), through
 * GET /admin/metrics of a real stack: demand held back by worker capacity alone,
 * the ages behind the lags, outcomes and durations counted where jobs end
 * (reconcilers) and served by the API, and charges.
 */
describe("operator metrics", () => {
  const stack = new Stack({ workers: [], adminToken: ADMIN });
  let pro: { id: string; key: string };
  let free: { id: string; key: string };
  const scrape = async () => {
    const res = await stack.http().get("/admin/metrics").set("Authorization", `Bearer ${ADMIN}`);
    expect(res.status).toBe(200);
    return res.text;
  };

  beforeAll(async () => {
    await stack.start();
    pro = await stack.env.user("ops-pro", "pro");
    free = await stack.env.user("ops-free", "free");
  });
  afterAll(() => stack.stop());

  it("counts waiting demand, lags, outcomes, durations and charges", async () => {
    const one = scripted({ steps: 1 });
    const proBatch = await stack.submitBatch(pro.key, {
      simulations: [one, one, one, one, scripted({ steps: 2, fail_at_step: 2 })],
      parallel_jobs: 3,
    });
    const freeBatch = await stack.submitBatch(free.key, { simulations: [one, one, one], parallel_jobs: 3 });
    expect([proBatch.status, freeBatch.status]).toEqual([202, 202]);

    // No worker: everything waits. Slots would start 3 of pro's 5 (parallel_jobs) and 1 of free's 3 (tier concurrency 1).
    let text = await scrape();
    expect(series(text, "simbatch_jobs_waiting_in_postgres")).toBe(8);
    expect(series(text, "simbatch_jobs_waiting_for_worker_slot")).toBe(4);
    expect(series(text, "simbatch_worker_slots_wanted")).toBe(4);
    expect(series(text, "simbatch_jobs_oldest_waiting_age_seconds")).toBeGreaterThan(0);
    expect(series(text, "simbatch_jobs_released_not_started")).toBe(0);
    expect(series(text, "simbatch_jobs_oldest_released_age_seconds")).toBe(0);
    expect(series(text, "simbatch_events_oldest_age_seconds")).toBe(0);
    expect(series(text, "simbatch_webhook_deliveries_failed_total")).toBe(0);

    // A worker that heartbeats but never takes jobs: the dispatcher releases its window (1 slot + its look-ahead), nobody claims them.
    await stack.env.core.registry.heartbeat("ghost", 1, 60_000);
    const window = 1 + LOOKAHEAD_PER_SLOT;
    expect(window).toBeLessThan(4);
    await waitFor(
      async () => {
        const t = await scrape();
        return series(t, "simbatch_jobs_released_not_started") === window && (series(t, "simbatch_jobs_oldest_released_age_seconds") ?? 0) > 0;
      },
      { what: `${window} released, unclaimed jobs` },
    );
    // A scrape runs its queries side by side on several connections, so the one that saw the release may have
    // met queries that started just before it committed: read the settled state (nobody claims) once more.
    text = await scrape();
    expect(series(text, "simbatch_jobs_released_not_started")).toBe(window);
    // Released jobs count against parallel_jobs and tier concurrency: of the 4 that limits allow, those
    // not released are held back only by slots, whichever went.
    expect(series(text, "simbatch_jobs_waiting_in_postgres")).toBe(8 - window);
    expect(series(text, "simbatch_jobs_waiting_for_worker_slot")).toBe(4 - window);
    // The released jobs are still wanted slots: the autoscaler's figure does not drop when jobs leave the waiting state.
    expect(series(text, "simbatch_worker_slots_wanted")).toBe(4);

    // A real worker takes the released jobs while the reconciler is frozen: their events wait in the stream.
    await stack.env.core.registry.remove("ghost");
    stack.reconciler.freeze(true);
    await stack.addWorker(4);
    await waitFor(
      async () => {
        const t = await scrape();
        return (
          (series(t, "simbatch_events_backlog") ?? 0) > 0 &&
          (series(t, "simbatch_events_oldest_age_seconds") ?? 0) > 0 &&
          series(t, "simbatch_jobs_released_not_started") === 0
        );
      },
      { what: "unapplied events with an age, every released job started" },
    );

    stack.reconciler.freeze(false);
    for (const [key, id] of [
      [pro.key, proBatch.body.batch_id],
      [free.key, freeBatch.body.batch_id],
    ]) {
      await stack.waitBatch(key, id, (b) => b.completed_at !== null, 30_000);
    }
    text = await waitFor(
      async () => {
        const t = await scrape();
        return series(t, "simbatch_events_oldest_age_seconds") === 0 && t;
      },
      { what: "every event applied" },
    );
    expect(series(text, "simbatch_jobs_waiting_in_postgres")).toBe(0);
    expect(series(text, "simbatch_jobs_waiting_for_worker_slot")).toBe(0);
    expect(series(text, "simbatch_jobs_oldest_waiting_age_seconds")).toBe(0);

    const rows = await stack.env.core.db.simulationJob.findMany({ where: { ownerId: { in: [pro.id, free.id] } } });
    expect(rows.map((r) => r.status).sort()).toEqual([...Array(7).fill("COMPLETED"), "FAILED"]);
    const T = 'template="test/scripted"';
    expect(series(text, `simbatch_job_outcomes_total{${T},status="COMPLETED"}`)).toBe(7);
    expect(series(text, `simbatch_job_outcomes_total{${T},status="FAILED"}`)).toBe(1);
    expect(series(text, `simbatch_job_duration_seconds_count{${T}}`)).toBe(7);
    expect(series(text, `simbatch_job_duration_seconds_bucket{${T},le="+Inf"}`)).toBe(7);
    const completed = rows.filter((r) => r.status === "COMPLETED");
    const durations = completed.reduce((a, r) => a + (r.completedAt!.getTime() - r.startedAt!.getTime()) / 1000, 0);
    expect(series(text, `simbatch_job_duration_seconds_sum{${T}}`)).toBeCloseTo(durations, 2);
    expect(series(text, "simbatch_charged_micros_total")).toBe(rows.reduce((a, r) => a + Number(r.costMicros), 0));

    // A replayed terminal event ends nothing, so it is not counted again.
    const replay: JobEvent[] = completed.map((r) => ({
      type: "completed",
      jobId: r.id,
      attempt: r.attempts,
      at: r.completedAt!.toISOString(),
      requestId: null,
      costMicros: 0,
      tokens: 0,
    }));
    expect((await applyEvents(stack.env.core, replay)).applied).toBe(0);
    expect(series(await scrape(), `simbatch_job_outcomes_total{${T},status="COMPLETED"}`)).toBe(7);
  });

  it("measures reconciler lag as the age of the stream's oldest unapplied entry, on the Redis clock", async () => {
    // A prefix no reconciler reads: the entry stays until the test removes it.
    const prefix = `${stack.env.prefix}-lag`;
    const key = redisKeys(prefix).events;
    const redis = stack.env.core.redis;
    const [sec] = await redis.time();
    await redis.xadd(key, `${(Number(sec) - 30) * 1000}-0`, "e", "{}");
    try {
      const snap = await operationsSnapshot({ ...stack.env.core, redisPrefix: prefix });
      expect(snap.events.backlog).toBe(1);
      expect(snap.events.oldest_age_seconds).toBeGreaterThanOrEqual(30);
      expect(snap.events.oldest_age_seconds).toBeLessThan(60);
    } finally {
      await redis.del(key);
    }
    expect((await operationsSnapshot({ ...stack.env.core, redisPrefix: prefix })).events.oldest_age_seconds).toBe(0);
  });
});
