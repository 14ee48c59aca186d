import { randomBytes } from "node:crypto";
import { redisKeys } from "@simbatch/contracts";
import { applyEvents, dispatch, sweep, SweepState, type CoreDeps, type SweepReport } from "@simbatch/core";
import { duplicateRedis, EventStream, type Redis, type StreamEntry } from "@simbatch/queue";
import { WebhookDeliverer, type WebhookDelivererOptions } from "./webhook-deliverer.ts";

export interface ReconcilerOptions {
  deps: CoreDeps;
  /** A dedicated connection: stream reads block on it. */
  streamRedis: Redis;
  redisPrefix: string;
  /** Default 15 s. */
  sweepIntervalMs?: number;
  /** Dispatch tick, catching capacity that appears without events (a worker starting). Default 1 s. */
  dispatchIntervalMs?: number;
  /** Events applied per transaction. Default 200. */
  batchSize?: number;
  /** The sweep's repair timeout (REPAIR_AFTER_MS, see sweep). Default 60 s. */
  repairAfterMs?: number;
  /** Unacknowledged events idle this long belong to a dead reconciler: take them over. Default 30 s. */
  staleEventMs?: number;
  /** Rows each sweep scan reads (rotating). Default 1000. */
  sweepScanLimit?: number;
  /** Batch-end webhook deliveries (their own queue and connection); none when absent. */
  webhooks?: Omit<WebhookDelivererOptions, "deps">;
}

/** What a reconciler counts in its life (logged; dead letters are also kept in Redis). */
export interface ReconcilerCounters {
  deadLettered: number;
}

/**
 * Applies worker events to Postgres in batches (one transaction per read),
 * acknowledges them after commit, dispatches, and sweeps for drift.
 */
export class ReconcilerRuntime {
  readonly id = `reconciler-${process.pid}-${randomBytes(3).toString("hex")}`;
  private running = false;
  private loop: Promise<void> | null = null;
  private timers: NodeJS.Timeout[] = [];
  private readonly stream: EventStream;
  private readonly sweepState = new SweepState();
  private frozen = false;
  private retryOwn = false;
  readonly counters: ReconcilerCounters = { deadLettered: 0 };

  constructor(private readonly opts: ReconcilerOptions) {
    const keys = redisKeys(opts.redisPrefix);
    this.stream = new EventStream(opts.streamRedis, keys.events, keys.eventsGroup);
  }

  private get log() {
    return this.opts.deps.logger;
  }

  private wake: Redis | null = null;
  private deliverer: WebhookDeliverer | null = null;

  async start(): Promise<void> {
    await this.stream.ensureGroup();
    // Admissions and cancels ask for a pass over pub/sub (requestDispatch).
    this.wake = duplicateRedis(this.opts.streamRedis);
    this.wake.on("message", () => {
      if (!this.frozen) this.kickDispatch();
    });
    this.wake.on("error", (err: Error) => this.log.warn("dispatch wake subscription error", { error: err.message }));
    await this.wake.subscribe(redisKeys(this.opts.redisPrefix).dispatchWake);
    this.running = true;
    if (this.opts.webhooks) {
      this.deliverer = new WebhookDeliverer({ deps: this.opts.deps, ...this.opts.webhooks });
      this.deliverer.start();
    }
    this.loop = this.readLoop();
    this.every(this.opts.sweepIntervalMs ?? 15_000, () => this.sweepOnce());
    this.every(this.opts.dispatchIntervalMs ?? 1_000, async () => void (await dispatch(this.opts.deps)));
    const staleMs = this.opts.staleEventMs ?? 30_000;
    this.every(Math.max(100, Math.min(10_000, Math.floor(staleMs / 3))), () => this.claimStale());
    this.log.info("reconciler started", { reconciler_id: this.id });
  }

  private every(ms: number, fn: () => Promise<unknown>): void {
    let busy = false;
    const t = setInterval(() => {
      if (busy || !this.running || this.frozen) return;
      busy = true;
      fn()
        .catch((err) => this.log.warn("periodic task failed", { error: String(err) }))
        .finally(() => (busy = false));
    }, ms);
    this.timers.push(t);
  }

  async sweepOnce(): Promise<SweepReport> {
    const report = await sweep(this.opts.deps, { repairAfterMs: this.opts.repairAfterMs, scanLimit: this.opts.sweepScanLimit }, this.sweepState);
    if (report.requeued > 0 || report.released > 0 || report.outcomesApplied > 0) this.log.info("sweep", { ...report });
    return report;
  }

  /**
   * Tests: stands for a stopped process (SIGSTOP, a long GC pause): no reads,
   * sweeps or dispatch ticks until thawed. What it had read stays unacknowledged.
   */
  freeze(frozen: boolean): void {
    this.frozen = frozen;
  }

  private async claimStale(): Promise<void> {
    const entries = await this.stream.claimStale(this.id, this.opts.staleEventMs ?? 30_000, this.opts.batchSize ?? 200);
    if (entries.length > 0) await this.apply(entries);
  }

  private async readLoop(): Promise<void> {
    while (this.running) {
      if (this.frozen) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      try {
        // After a failed apply (Postgres unreachable), this consumer's own unacknowledged entries go first.
        const own = this.retryOwn;
        const entries = await this.stream.read(this.id, this.opts.batchSize ?? 200, own ? 0 : 500, own ? "0" : ">");
        if (own && entries.length === 0) this.retryOwn = false;
        while (this.frozen && this.running) await new Promise((r) => setTimeout(r, 20));
        if (entries.length > 0) await this.apply(entries);
      } catch (err) {
        if (!this.running) break;
        // Redis lost the stream (restart without persistence, flush): workers'
        // next events recreate it, and the group must be made again to read them.
        if (String(err).includes("NOGROUP")) {
          this.log.warn("event stream or group missing; recreating it", { error: String(err) });
          await this.stream.ensureGroup().catch(() => undefined);
          continue;
        }
        this.retryOwn = true;
        this.log.warn("event loop error; retrying", { error: String(err) });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async apply(entries: StreamEntry[]): Promise<void> {
    const events = entries.flatMap((e) => (e.event ? [e.event] : []));
    // An entry that is not a valid event is kept aside and acknowledged with the
    // rest: it never stalls the stream (each entry was parsed on its own).
    const poison = entries.filter((e) => !e.event);
    const result = await applyEvents(this.opts.deps, events);
    if (poison.length > 0) {
      await this.stream.deadLetter(poison);
      this.counters.deadLettered += poison.length;
      for (const p of poison) this.log.error("dead-lettered an invalid event", { entry_id: p.id, error: p.error });
    }
    await this.stream.ack(entries.map((e) => e.id));
    for (const e of events) {
      if (e.type !== "progress") this.log.info(`job ${e.type}`, { job_id: e.jobId, attempt: e.attempt, request_id: e.requestId, cost_micros: e.costMicros });
    }
    // Not awaited: the next read is applied while this dispatch runs. Passes are
    // single-flight per process, so a burst of reads costs one or two passes.
    if (result.capacityChanged) this.kickDispatch();
  }

  private dispatching: Promise<unknown> = Promise.resolve();

  private kickDispatch(): void {
    this.dispatching = dispatch(this.opts.deps).catch((err) => this.log.warn("dispatch failed; the next tick retries", { error: String(err) }));
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    this.wake?.disconnect();
    await this.deliverer?.stop();
    this.opts.streamRedis.disconnect();
    await this.loop?.catch(() => undefined);
    await this.dispatching;
    this.log.info("reconciler stopped", { reconciler_id: this.id });
  }
}
