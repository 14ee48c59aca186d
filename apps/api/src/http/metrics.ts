import { operationsSnapshot, webhookDeliveriesFailed, type OperationsSnapshot } from "@simbatch/core";
import { JOB_DURATION_BUCKETS, type JobOutcomeTotals } from "@simbatch/queue";
import type { RequestHandler } from "express";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ApiDeps } from "../deps.ts";

interface PresetSeries {
  labels: Record<string, string>;
  /** Count per bucket (not cumulative), the +Inf overflow last. */
  buckets: number[];
  sum: number;
  count: number;
}

/**
 * A histogram whose buckets are counted elsewhere (in Redis, by the processes
 * where the events happen) and set whole at scrape time, exported in
 * Prometheus' histogram shape (`_bucket{le}`, `_sum`, `_count`).
 */
class PresetHistogram extends Histogram<string> {
  private series: PresetSeries[] = [];

  constructor(
    private readonly metricName: string,
    private readonly helpText: string,
    labelNames: string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super({ name: metricName, help: helpText, labelNames, buckets: [...bounds], registers: [registry] });
  }

  setAll(series: PresetSeries[]): void {
    this.series = series;
  }

  private values() {
    return this.series.flatMap((s) => {
      let cumulative = 0;
      const buckets = [...this.bounds, Number.POSITIVE_INFINITY].map((le, i) => {
        cumulative += s.buckets[i] ?? 0;
        return { metricName: `${this.metricName}_bucket`, labels: { ...s.labels, le: le === Number.POSITIVE_INFINITY ? "+Inf" : le }, value: cumulative };
      });
      return [
        ...buckets,
        { metricName: `${this.metricName}_sum`, labels: s.labels, value: s.sum },
        { metricName: `${this.metricName}_count`, labels: s.labels, value: s.count },
      ];
    });
  }

  // The registry reads `getForPromString` for the text format and `get` for JSON; both answer the preset series.
  override async get(): Promise<Awaited<ReturnType<Histogram<string>["get"]>>> {
    const data = { name: this.metricName, help: this.helpText, type: "histogram", values: this.values(), aggregator: "sum" };
    return data as unknown as Awaited<ReturnType<Histogram<string>["get"]>>;
  }

  async getForPromString() {
    return this.get();
  }
}

/** Prometheus metrics of this API process plus a snapshot of the whole deployment, read at scrape time. */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: "simbatch_http_request_duration_seconds",
    help: "HTTP request duration by route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly gauges = {
    jobs: this.gauge("simbatch_jobs", "Simulation jobs by status", ["status"]),
    waiting: this.gauge("simbatch_jobs_waiting_in_postgres", "PENDING jobs waiting in Postgres for a worker slot"),
    released: this.gauge("simbatch_jobs_released_not_started", "Jobs released to BullMQ that no worker has claimed yet"),
    batches: this.gauge("simbatch_batches_open", "Batches not yet finished"),
    queue: this.gauge("simbatch_queue_jobs", "BullMQ jobs of the simulations queue by state", ["state"]),
    workers: this.gauge("simbatch_workers_live", "Worker processes with a live heartbeat"),
    capacity: this.gauge("simbatch_worker_capacity", "Summed concurrency of live workers"),
    backlog: this.gauge("simbatch_events_backlog", "Worker events not yet applied by a reconciler"),
    unacked: this.gauge("simbatch_events_unacknowledged", "Events read by a reconciler but not acknowledged"),
    dead: this.gauge("simbatch_events_dead_lettered", "Stream entries that were not valid events, kept in <prefix>:events:dead"),
    forSlot: this.gauge(
      "simbatch_jobs_waiting_for_worker_slot",
      "Waiting jobs that their batch's parallel_jobs and their tier's concurrency would let start now: held back only by worker capacity",
    ),
    slotsWanted: this.gauge(
      "simbatch_worker_slots_wanted",
      "Worker slots the current load could use: jobs running, released and waiting for a worker slot (the worker autoscaler's metric)",
    ),
    oldestWaiting: this.gauge("simbatch_jobs_oldest_waiting_age_seconds", "Age of the oldest job waiting in Postgres (0 when none waits)"),
    oldestReleased: this.gauge(
      "simbatch_jobs_oldest_released_age_seconds",
      "Time since the release of the oldest job released to BullMQ and not yet claimed by a worker (0 when none)",
    ),
    eventAge: this.gauge("simbatch_events_oldest_age_seconds", "Age of the oldest worker event no reconciler has applied yet (0 when none): reconciler lag"),
  };
  private readonly counters = {
    outcomes: this.counter("simbatch_job_outcomes_total", "Jobs that ended after running, by template and end status, as reconcilers applied them", [
      "template",
      "status",
    ]),
    charged: this.counter("simbatch_charged_micros_total", "Micro-dollars charged for ended jobs (all users)"),
    webhookFailures: this.counter("simbatch_webhook_deliveries_failed_total", "Webhook delivery attempts that failed (non-2xx answer or none)"),
  };
  private readonly jobDuration = new PresetHistogram(
    "simbatch_job_duration_seconds",
    "Completed jobs from first start to end, by template",
    ["template"],
    JOB_DURATION_BUCKETS,
    this.registry,
  );

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "simbatch_api_" });
  }

  private gauge(name: string, help: string, labelNames: string[] = []) {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private counter(name: string, help: string, labelNames: string[] = []) {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** Counters whose totals are kept elsewhere (Postgres, Redis): set to those totals. */
  private static setTotal(counter: Counter<string>, values: { labels: Record<string, string>; value: number }[]): void {
    counter.reset();
    for (const v of values) counter.inc(v.labels, Math.max(0, v.value));
  }

  /**
   * Times every request; the route label is the matched pattern, never the raw
   * path (bounded cardinality). What a mounted app (the queue board) answers is
   * labelled by its mount path.
   */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const end = this.duration.startTimer();
      res.on("finish", () => {
        const route = req.baseUrl ? `${req.baseUrl}/*` : ((req.route as { path?: string } | undefined)?.path ?? "unmatched");
        end({ method: req.method, route, status: String(res.statusCode) });
      });
      next();
    };
  }

  set(s: OperationsSnapshot): void {
    for (const [status, n] of Object.entries(s.jobs)) this.gauges.jobs.set({ status }, n);
    this.gauges.waiting.set(s.waiting_in_postgres);
    this.gauges.released.set(s.released_not_started);
    this.gauges.batches.set(s.batches_open);
    for (const [state, n] of Object.entries(s.queue)) this.gauges.queue.set({ state }, n);
    this.gauges.workers.set(s.workers.live);
    this.gauges.capacity.set(s.workers.capacity);
    this.gauges.backlog.set(s.events.backlog);
    this.gauges.unacked.set(s.events.unacknowledged);
    this.gauges.dead.set(s.events.dead_lettered);
    this.gauges.forSlot.set(s.waiting_for_worker_slot);
    // Stays put once the fleet is big enough (waiting drains into running), so an autoscaler on it does not oscillate.
    this.gauges.slotsWanted.set(s.jobs.RUNNING + s.released_not_started + s.waiting_for_worker_slot);
    this.gauges.oldestWaiting.set(s.oldest_waiting_age_seconds);
    this.gauges.oldestReleased.set(s.oldest_released_age_seconds);
    this.gauges.eventAge.set(s.events.oldest_age_seconds);
    ApiMetrics.setTotal(this.counters.charged, [{ labels: {}, value: s.charged_micros }]);
  }

  setJobTotals(t: JobOutcomeTotals): void {
    ApiMetrics.setTotal(
      this.counters.outcomes,
      t.outcomes.map((o) => ({ labels: { template: o.template, status: o.status }, value: o.count })),
    );
    this.jobDuration.setAll(t.durations.map((d) => ({ labels: { template: d.template }, buckets: d.buckets, sum: d.sum, count: d.count })));
  }

  setWebhookFailures(n: number): void {
    ApiMetrics.setTotal(this.counters.webhookFailures, [{ labels: {}, value: n }]);
  }
}

export function operationsHandlers(deps: ApiDeps, metrics: ApiMetrics) {
  const snapshot: RequestHandler = async (_req, res) => {
    res.json(await operationsSnapshot(deps));
  };
  const prometheus: RequestHandler = async (_req, res) => {
    const [snapshot, jobs, webhookFailures] = await Promise.all([operationsSnapshot(deps), deps.jobMetrics.read(), webhookDeliveriesFailed(deps)]);
    metrics.set(snapshot);
    metrics.setJobTotals(jobs);
    metrics.setWebhookFailures(webhookFailures);
    res.setHeader("Content-Type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  };
  return { snapshot, prometheus };
}
