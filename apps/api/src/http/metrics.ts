import { operationsSnapshot, type OperationsSnapshot } from "@simbatch/core";
import type { RequestHandler } from "express";
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ApiDeps } from "../deps.ts";

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
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "simbatch_api_" });
  }

  private gauge(name: string, help: string, labelNames: string[] = []) {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
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
  }
}

export function operationsHandlers(deps: ApiDeps, metrics: ApiMetrics) {
  const snapshot: RequestHandler = async (_req, res) => {
    res.json(await operationsSnapshot(deps));
  };
  const prometheus: RequestHandler = async (_req, res) => {
    metrics.set(await operationsSnapshot(deps));
    res.setHeader("Content-Type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  };
  return { snapshot, prometheus };
}
