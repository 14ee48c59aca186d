import type { OperationsSnapshot } from "@simbatch/core";
import { JOB_DURATION_BUCKETS, parseJobMetrics } from "@simbatch/queue";
import { ApiMetrics } from "../src/http/metrics.ts";

const snapshot = (over: Partial<OperationsSnapshot> = {}): OperationsSnapshot => ({
  jobs: { PENDING: 7, RUNNING: 2, COMPLETED: 10, FAILED: 1, CANCELLED: 0 },
  waiting_in_postgres: 5,
  waiting_for_worker_slot: 3,
  oldest_waiting_age_seconds: 42.5,
  released_not_started: 2,
  oldest_released_age_seconds: 1.25,
  batches_open: 2,
  queue: { waiting: 0, prioritized: 2, active: 2 },
  workers: { live: 1, capacity: 2 },
  events: { backlog: 4, unacknowledged: 1, dead_lettered: 0, oldest_age_seconds: 0.5 },
  charged_micros: 123_456,
  ...over,
});

/** The value of one exposition line, by its exact series (name and labels as printed). */
const value = (text: string, series: string): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe("ApiMetrics", () => {
  it("exports the snapshot's gauges and totals", async () => {
    const m = new ApiMetrics();
    m.set(snapshot());
    const text = await m.registry.metrics();
    expect(value(text, "simbatch_jobs_waiting_for_worker_slot")).toBe(3);
    // 2 running + 2 released + 3 waiting for a slot.
    expect(value(text, "simbatch_worker_slots_wanted")).toBe(7);
    expect(value(text, "simbatch_jobs_oldest_waiting_age_seconds")).toBe(42.5);
    expect(value(text, "simbatch_jobs_oldest_released_age_seconds")).toBe(1.25);
    expect(value(text, "simbatch_events_oldest_age_seconds")).toBe(0.5);
    expect(value(text, "simbatch_charged_micros_total")).toBe(123_456);
    expect(text).toContain("# TYPE simbatch_charged_micros_total counter");
    // Totals kept elsewhere are set, not added to, on every scrape.
    m.set(snapshot({ charged_micros: 200_000 }));
    expect(value(await m.registry.metrics(), "simbatch_charged_micros_total")).toBe(200_000);
  });

  it("exports outcomes as counters and completed durations as a cumulative histogram per template", async () => {
    const m = new ApiMetrics();
    // What JobMetrics keeps in Redis: 3 completed (0.3 s, 0.7 s, 2 h) and 1 failed of one template, 1 completed of a job without one.
    const hash = {
      "n|COMPLETED|test/scripted": "3",
      "n|FAILED|test/scripted": "1",
      "n|COMPLETED|none": "1",
      "b|0|test/scripted": "1",
      "b|1|test/scripted": "1",
      [`b|${JOB_DURATION_BUCKETS.length}|test/scripted`]: "1",
      "s|test/scripted": "7201",
      "c|test/scripted": "3",
      "b|2|none": "1",
      "s|none": "2",
      "c|none": "1",
    };
    m.setJobTotals(parseJobMetrics(hash));
    m.setWebhookFailures(0);
    const text = await m.registry.metrics();
    expect(value(text, 'simbatch_job_outcomes_total{template="test/scripted",status="COMPLETED"}')).toBe(3);
    expect(value(text, 'simbatch_job_outcomes_total{template="test/scripted",status="FAILED"}')).toBe(1);
    expect(value(text, 'simbatch_job_outcomes_total{template="none",status="COMPLETED"}')).toBe(1);
    expect(text).toContain("# TYPE simbatch_job_duration_seconds histogram");
    const bucket = (template: string, le: string) => value(text, `simbatch_job_duration_seconds_bucket{template="${template}",le="${le}"}`);
    expect(bucket("test/scripted", "0.5")).toBe(1);
    expect(bucket("test/scripted", "1")).toBe(2);
    expect(bucket("test/scripted", "3600")).toBe(2);
    expect(bucket("test/scripted", "+Inf")).toBe(3);
    expect(bucket("none", "1")).toBe(0);
    expect(bucket("none", "2.5")).toBe(1);
    expect(value(text, 'simbatch_job_duration_seconds_sum{template="test/scripted"}')).toBe(7201);
    expect(value(text, 'simbatch_job_duration_seconds_count{template="test/scripted"}')).toBe(3);
    expect(value(text, "simbatch_webhook_deliveries_failed_total")).toBe(0);
    // The JSON view (what the deploy test reads names from) holds the same series.
    const json = await m.registry.getMetricsAsJSON();
    const hist = json.find((x) => x.name === "simbatch_job_duration_seconds")!;
    expect(hist.values.filter((v) => (v as { metricName?: string }).metricName === "simbatch_job_duration_seconds_count")).toHaveLength(2);
  });

  it("skips malformed fields of the Redis hash", () => {
    const t = parseJobMetrics({ junk: "1", "n|COMPLETED": "2", "b|99|x": "1", "c|x": "nan", "n|FAILED|a|b": "4" });
    expect(t.outcomes).toEqual([{ template: "a|b", status: "FAILED", count: 4 }]);
    expect(t.durations).toEqual([]);
  });
});
