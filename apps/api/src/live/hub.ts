import { randomBytes } from "node:crypto";
import { redisKeys } from "@simbatch/contracts";
import { batchJobSummaries, JOB_FINAL_STATUSES, loadBatchById, type BatchWithAggregate, type JobSummary } from "@simbatch/core";
import type { Db, SimulationJob } from "@simbatch/db";
import type { Logger } from "@simbatch/logger";
import { createRedis, duplicateRedis, ProgressChannel, StreamSlots, type ProgressChange, type Redis, type RedisTarget } from "@simbatch/queue";
import { batchStreamJobView, batchViewOf, jobView } from "@simbatch/views";
import type { Response } from "express";

export interface LiveHubOptions {
  db: Db;
  /** Makes the connection of this hub's subscription (subscribed connections can do nothing else); called on the first stream. */
  subscriber: () => Redis;
  /** For the per-user stream slots. */
  redis: Redis;
  redisPrefix: string;
  logger: Logger;
  /** `: keep-alive` interval (contract: 15 s). */
  keepAliveMs?: number;
  /** Streams per user across every API process (contract: 20). */
  maxStreamsPerUser?: number;
  /** Least time between two events of a stream (contract: 250 ms). */
  minIntervalMs?: number;
  /** Each watched batch or job is re-read this often even without news (a lost pub/sub message only delays). */
  refreshMs?: number;
}

/**
 * Added to the least gap between two events of a stream: the contract's 250 ms is what a
 * client sees, and delivery shifts arrivals (an audit's client read 225 ms between two
 * events sent 250 ms apart on an idle machine).
 */
const STREAM_GAP_MARGIN_MS = 25;

/** The key of a batch stream's batch events (a job's are `job:<id>`). */
const BATCH_KEY = "batch";

/** An event for a stream; a later event with the same key replaces one not yet sent. */
interface StreamEvent {
  key: string;
  event: string;
  data: unknown;
}

/**
 * One open SSE response: at most one event per minIntervalMs (contract: "at most one per
 * 250 ms per stream"). Events wait in a queue of the latest state per job and for the
 * batch: an event replaces an unsent one of the same key and goes to the back. Turns
 * alternate between the batch and its jobs, so a batch with many changing jobs still sees
 * its own progress every other event; once the stream is ending, its jobs go first and
 * the batch's terminal state last. Exported for its unit test (apps/api/test/live-stream.test.ts).
 */
export class Stream {
  closed = false;
  private pending = new Map<string, StreamEvent>();
  private lastSentAt = -Infinity;
  private lastWasBatch = false;
  private timer: NodeJS.Timeout | null = null;
  private ending = false;

  constructor(
    readonly res: Response,
    readonly userId: string,
    /** The user's stream slot this stream holds (StreamSlots). */
    readonly slotId: string,
    private nextId: number,
    private readonly minIntervalMs: number,
  ) {}

  send(events: StreamEvent[]): void {
    if (this.closed || this.ending || events.length === 0) return;
    for (const e of events) {
      this.pending.delete(e.key);
      this.pending.set(e.key, e);
    }
    this.schedule();
  }

  /**
   * The next turn, never in the caller's own tick: a refresh that finds a terminal state
   * sends it and then ends the stream, and the end must be known before anything goes out.
   */
  private schedule(): void {
    if (this.timer || this.pending.size === 0) return;
    const wait = Math.max(0, this.lastSentAt + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sendNext();
      if (this.pending.size > 0) this.schedule();
      else if (this.ending) this.finish();
    }, wait);
  }

  private next(): StreamEvent | undefined {
    const batch = this.pending.get(BATCH_KEY);
    let job: StreamEvent | undefined;
    for (const e of this.pending.values()) {
      if (e.key !== BATCH_KEY) {
        job = e;
        break;
      }
    }
    if (batch && (!job || (!this.ending && !this.lastWasBatch))) return batch;
    return job;
  }

  private sendNext(): void {
    const e = this.next();
    if (this.closed || !e) return;
    this.pending.delete(e.key);
    this.write([e]);
    this.lastWasBatch = e.key === BATCH_KEY;
  }

  private write(events: StreamEvent[]): void {
    let text = "";
    for (const e of events) text += `id: ${this.nextId++}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
    this.lastSentAt = Date.now();
    if (!this.res.destroyed) this.res.write(text);
  }

  comment(text: string): void {
    if (!this.closed && !this.res.destroyed) this.res.write(`: ${text}\n\n`);
  }

  /**
   * Ends the response once the events still waiting have had their turns; `now` sends them
   * at once (shutdown, a gone client).
   */
  end(now = false): void {
    if (this.closed) return;
    if (!now && this.pending.size > 0) {
      this.ending = true;
      this.schedule();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size > 0) this.write([...this.pending.values()]);
    this.pending.clear();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.res.end();
  }
}

/**
 * What the streams of one batch or job share: the last state they were sent (to
 * send only changes), and the refresh schedule (one read per refresh however
 * many streams watch, at most one refresh per minIntervalMs).
 */
interface Watch {
  streams: Set<Stream>;
  dirty: boolean;
  timer: NodeJS.Timeout | null;
  running: boolean;
  lastRefresh: number;
  /** Batch watches: the serialized batch view last sent (without eta, which moves with the clock) and each job's summary. */
  lastBatch?: string;
  jobs?: Map<string, string>;
  /** Job watches: the serialized job view last sent. */
  lastJob?: string;
}

const batchFinished = (b: BatchWithAggregate) => b.batch.completedAt !== null;
/** A batch view without eta_seconds (which moves with the clock), for telling a change. */
const stableOf = (view: ReturnType<typeof batchViewOf>) => JSON.stringify({ ...view, eta_seconds: null });

/**
 * Live progress for every stream of this API process, fed by one Redis pub/sub
 * subscription (ProgressChannel: reconcilers, workers and API processes publish
 * the ids of what changed). A change marks the watch of its batch or job dirty;
 * the watch re-reads its state at most every minIntervalMs and sends what changed
 * to each of its streams, so the database work follows the number of watched
 * batches and jobs and the rate of change, never the number of streams.
 */
export class LiveHub {
  private readonly batches = new Map<string, Watch>();
  private readonly jobs = new Map<string, Watch>();
  private readonly slots: StreamSlots;
  private readonly keepAliveMs: number;
  private readonly minIntervalMs: number;
  private readonly refreshMs: number;
  readonly maxStreamsPerUser: number;
  /** State reads of refreshes (one per watched batch or job per refresh, whatever the number of streams on it). */
  readonly stats = { refreshReads: 0 };
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly opts: LiveHubOptions) {
    this.keepAliveMs = opts.keepAliveMs ?? 15_000;
    this.minIntervalMs = opts.minIntervalMs ?? 250;
    this.refreshMs = opts.refreshMs ?? 5_000;
    this.maxStreamsPerUser = opts.maxStreamsPerUser ?? 20;
    const keys = redisKeys(opts.redisPrefix);
    // A process that dies stops beating: its slots lapse after three keep-alive periods.
    this.slots = new StreamSlots(opts.redis, keys.streams, Math.max(3 * this.keepAliveMs, 5_000));
  }

  private started: Promise<void> | null = null;

  /**
   * Subscribes and starts the keep-alive and refresh timers, once, when the first
   * stream opens (an API process that never serves a stream holds no subscription).
   * A failed subscribe leaves the streams on their refresh timer (and is retried by
   * ioredis' reconnects).
   */
  private start(): Promise<void> {
    this.started ??= (async () => {
      this.timers.push(setInterval(() => this.keepAlive(), this.keepAliveMs));
      this.timers.push(setInterval(() => this.refreshAll(), this.refreshMs));
      const connection = this.opts.subscriber();
      connection.on("error", (err: Error) => this.opts.logger.warn("live progress subscription error", { error: err.message }));
      this.unsubscribe = () => connection.disconnect();
      await ProgressChannel.subscribe(connection, redisKeys(this.opts.redisPrefix).progress, (c) => this.onChange(c)).catch((err) =>
        this.opts.logger.warn("live progress subscription failed; streams refresh on their timer", { error: String(err) }),
      );
    })();
    return this.started;
  }

  /** Takes one of the user's stream slots; false when the user holds the maximum. */
  acquire(userId: string, streamId: string): Promise<boolean> {
    return this.slots.acquire(userId, streamId, this.maxStreamsPerUser);
  }

  /** Opens an SSE response (headers, status 200) for a stream; ids continue after Last-Event-ID when it is a number. */
  open(res: Response, userId: string, slotId: string, lastEventId: string | undefined): Stream {
    const last = Number(lastEventId);
    const stream = new Stream(res, userId, slotId, Number.isSafeInteger(last) && last >= 0 ? last + 1 : 1, this.minIntervalMs + STREAM_GAP_MARGIN_MS);
    res.status(200);
    res.setHeader("Content-Type", "text/event-stream; charset=utf-8");
    res.setHeader("Cache-Control", "no-cache, no-transform");
    res.setHeader("Connection", "keep-alive");
    res.setHeader("X-Accel-Buffering", "no");
    res.flushHeaders();
    return stream;
  }

  newStreamId(): string {
    return randomBytes(8).toString("hex");
  }

  /**
   * Serves a batch stream: watch first (so no change between the snapshot and the
   * watch is missed), then the snapshot; a finished batch is closed after it.
   */
  async serveBatch(stream: Stream, batch: BatchWithAggregate): Promise<void> {
    await this.start();
    const id = batch.batch.id;
    const watch = this.watch(this.batches, id, stream);
    const view = batchViewOf(batch);
    if (batchFinished(batch)) {
      stream.send([{ key: BATCH_KEY, event: "batch", data: view }]);
      return this.closeStream(this.batches, id, stream);
    }
    if (!watch.jobs) {
      watch.jobs = new Map((await batchJobSummaries(this.opts.db, id)).map((j) => [j.id, JSON.stringify(batchStreamJobView(j))]));
    }
    stream.send([{ key: BATCH_KEY, event: "batch", data: view }]);
    watch.lastBatch ??= stableOf(view);
  }

  async serveJob(stream: Stream, job: SimulationJob): Promise<void> {
    await this.start();
    const watch = this.watch(this.jobs, job.id, stream);
    const view = jobView(job);
    stream.send([{ key: "job", event: "job", data: view }]);
    watch.lastJob ??= JSON.stringify(view);
    if (JOB_FINAL_STATUSES.has(job.status)) this.closeStream(this.jobs, job.id, stream);
  }

  private watch(map: Map<string, Watch>, id: string, stream: Stream): Watch {
    let watch = map.get(id);
    if (!watch) {
      watch = { streams: new Set(), dirty: false, timer: null, running: false, lastRefresh: 0 };
      map.set(id, watch);
    }
    watch.streams.add(stream);
    const gone = () => {
      this.closeStream(map, id, stream, true);
      this.slots.release(stream.userId, stream.slotId).catch(() => undefined);
    };
    if (stream.res.closed || stream.res.destroyed) gone();
    else stream.res.on("close", gone);
    return watch;
  }

  private onChange(change: ProgressChange): void {
    for (const [jobId, batchId] of change.jobs) {
      if (this.jobs.has(jobId)) this.schedule(this.jobs, jobId);
      if (batchId && this.batches.has(batchId)) this.schedule(this.batches, batchId);
    }
    for (const batchId of change.batches) if (this.batches.has(batchId)) this.schedule(this.batches, batchId);
  }

  /** Coalesces: one refresh at most every minIntervalMs per watch; news during a refresh makes one more. */
  private schedule(map: Map<string, Watch>, id: string): void {
    const watch = map.get(id);
    if (!watch) return;
    watch.dirty = true;
    if (watch.timer || watch.running) return;
    const wait = Math.max(0, watch.lastRefresh + this.minIntervalMs - Date.now());
    watch.timer = setTimeout(() => {
      watch.timer = null;
      void this.refresh(map, id, watch);
    }, wait);
  }

  private async refresh(map: Map<string, Watch>, id: string, watch: Watch): Promise<void> {
    if (map.get(id) !== watch) return;
    watch.running = true;
    watch.dirty = false;
    this.stats.refreshReads++;
    watch.lastRefresh = Date.now();
    try {
      if (map === this.batches) await this.refreshBatch(id, watch);
      else await this.refreshJob(id, watch);
    } catch (err) {
      this.opts.logger.warn("live progress refresh failed; the next change or refresh retries", { id, error: String(err) });
    } finally {
      // The next refresh starts minIntervalMs after this one's events went out.
      watch.lastRefresh = Date.now();
      watch.running = false;
      if (watch.dirty && map.get(id) === watch) this.schedule(map, id);
    }
  }

  private async refreshBatch(id: string, watch: Watch): Promise<void> {
    const [batch, jobs] = await Promise.all([loadBatchById(this.opts.db, id), batchJobSummaries(this.opts.db, id)]);
    if (!batch) return this.endAll(this.batches, id, watch);
    const changed: JobSummary[] = [];
    for (const j of jobs) {
      const s = JSON.stringify(batchStreamJobView(j));
      if (watch.jobs?.get(j.id) !== s) {
        changed.push(j);
        watch.jobs?.set(j.id, s);
      }
    }
    const view = batchViewOf(batch);
    const stable = stableOf(view);
    const batchChanged = stable !== watch.lastBatch;
    watch.lastBatch = stable;
    if (changed.length === 0 && !batchChanged && !batchFinished(batch)) return;
    const events: StreamEvent[] = changed.map((j) => ({ key: `job:${j.id}`, event: "job", data: batchStreamJobView(j) }));
    events.push({ key: BATCH_KEY, event: "batch", data: view });
    for (const s of watch.streams) s.send(events);
    if (batchFinished(batch)) this.endAll(this.batches, id, watch);
  }

  private async refreshJob(id: string, watch: Watch): Promise<void> {
    const job = await this.opts.db.simulationJob.findUnique({ where: { id } });
    if (!job) return this.endAll(this.jobs, id, watch);
    const view = jobView(job);
    const s = JSON.stringify(view);
    if (s !== watch.lastJob) {
      watch.lastJob = s;
      for (const st of watch.streams) st.send([{ key: "job", event: "job", data: view }]);
    }
    if (JOB_FINAL_STATUSES.has(job.status)) this.endAll(this.jobs, id, watch);
  }

  private endAll(map: Map<string, Watch>, id: string, watch: Watch, now = false): void {
    for (const s of [...watch.streams]) this.closeStream(map, id, s, now);
  }

  private keepAlive(): void {
    const byUser = new Map<string, string[]>();
    for (const w of [...this.batches.values(), ...this.jobs.values()]) {
      for (const s of w.streams) {
        s.comment("keep-alive");
        byUser.set(s.userId, [...(byUser.get(s.userId) ?? []), s.slotId]);
      }
    }
    for (const [userId, ids] of byUser) this.slots.beat(userId, ids).catch(() => undefined);
  }

  private refreshAll(): void {
    for (const id of this.batches.keys()) this.schedule(this.batches, id);
    for (const id of this.jobs.keys()) this.schedule(this.jobs, id);
  }

  /** Ends every stream (shutdown: clients reconnect to another process) and the subscription. */
  shutdown(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const [wid, w] of this.batches) this.endAll(this.batches, wid, w, true);
    for (const [wid, w] of this.jobs) this.endAll(this.jobs, wid, w, true);
    this.unsubscribe?.();
  }

  /** `now`: end without waiting for the stream's next turn (shutdown, a client gone). */
  private closeStream(map: Map<string, Watch>, id: string, stream: Stream, now = false): void {
    stream.end(now);
    const watch = map.get(id);
    if (!watch) return;
    watch.streams.delete(stream);
    if (watch.streams.size === 0) {
      if (watch.timer) clearTimeout(watch.timer);
      map.delete(id);
    }
  }
}

/** The hub of an API process, on its clients and config (one subscription per process, made on the first stream). */
export function liveHub(deps: {
  db: Db;
  redis: Redis;
  redisTarget?: RedisTarget;
  redisPrefix: string;
  logger: Logger;
  config: { live?: Partial<LiveHubOptions> };
}): LiveHub {
  return new LiveHub({
    db: deps.db,
    // A consumer connection: it waits through reconnects (ioredis re-subscribes after one).
    subscriber: () => (deps.redisTarget ? createRedis(deps.redisTarget, "consumer") : duplicateRedis(deps.redis)),
    redis: deps.redis,
    redisPrefix: deps.redisPrefix,
    logger: deps.logger,
    ...deps.config.live,
  });
}
