import type { Express } from "express";
import request from "supertest";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHttpServer, wireApi, type ApiDeps, type LiveHub } from "@simbatch/api";
import { wireCore, type Wired } from "@simbatch/runtime";
import type { ApiCallFlusher } from "@simbatch/queue";
import { ReconcilerRuntime } from "@simbatch/reconciler";
import { WorkerRuntime } from "@simbatch/worker";
import { createEngine, type SimulationEngine } from "@simbatch/engine";
import { TestEnv, waitFor, type TestEnvOptions } from "@simbatch/testing";

export interface StackOptions extends TestEnvOptions {
  workers?: number[];
  adminToken?: string;
  /** As RATE_LIMIT_ENABLED. Default false here: the wait helpers poll far faster than any tier allows. */
  rateLimitEnabled?: boolean;
  /** As USAGE_FLUSH_INTERVAL_MS; default 60 s so tests flush explicitly (restart, history). */
  flushIntervalMs?: number;
  engine?: SimulationEngine;
  lockDurationMs?: number;
  /** As MAX_JOB_ATTEMPTS. Default 5. */
  maxJobAttempts?: number;
  /** As REPAIR_AFTER_MS for the reconciler's sweep. Default 60 s. */
  repairAfterMs?: number;
  /** As WEBHOOK_ALLOW_PRIVATE_NETWORKS (API checks and deliveries). Default false. */
  webhookAllowPrivate?: boolean;
  /** As SSE_KEEPALIVE_MS and SSE_MAX_STREAMS_PER_USER. */
  sseKeepAliveMs?: number;
  sseMaxStreams?: number;
  /** Webhook delivery timeout (WEBHOOK_TIMEOUT_MS). Default 10 s. */
  webhookTimeoutMs?: number;
  /** Workers' shortest gap between two progress events of a job (PROGRESS_INTERVAL_MS). Default 0: every step's. */
  progressIntervalMs?: number;
}

/**
 * The whole service in-process: the Express app (driven with supertest), worker
 * runtimes and a reconciler, on a fresh database and Redis prefix.
 */
export class Stack {
  readonly env: TestEnv;
  app!: Express;
  deps!: ApiDeps;
  workers: WorkerRuntime[] = [];
  reconciler!: ReconcilerRuntime;
  flusher!: ApiCallFlusher;
  live: LiveHub | undefined;

  constructor(private readonly opts: StackOptions = {}) {
    this.env = new TestEnv(opts);
  }

  async start(): Promise<this> {
    await this.env.setup();
    this.buildApp();
    for (const concurrency of this.opts.workers ?? [4]) await this.addWorker(concurrency);
    await this.restartReconciler();
    return this;
  }

  /** A new reconciler (the first, or one after `reconciler.stop()`, as after a restart). */
  async restartReconciler(): Promise<void> {
    this.reconciler = new ReconcilerRuntime({
      deps: this.env.core,
      streamRedis: this.env.redis(),
      redisPrefix: this.env.prefix,
      sweepIntervalMs: 60_000,
      dispatchIntervalMs: 200,
      repairAfterMs: this.opts.repairAfterMs,
      webhooks: {
        connection: this.env.redis(),
        allowPrivate: this.opts.webhookAllowPrivate ?? false,
        timeoutMs: this.opts.webhookTimeoutMs ?? 10_000,
        concurrency: 4,
      },
    });
    await this.reconciler.start();
  }

  /** Wires the API as main.ts does (wireApi). */
  private buildApp(): void {
    this.live?.shutdown();
    const { app, deps, flusher, live } = wireApi(this.env.core, {
      config: {
        adminToken: this.opts.adminToken,
        maxBodyBytes: 64 * 1024,
        webhookAllowPrivate: this.opts.webhookAllowPrivate ?? false,
        live: { keepAliveMs: this.opts.sseKeepAliveMs ?? 15_000, maxStreamsPerUser: this.opts.sseMaxStreams ?? 20 },
      },
      flushIntervalMs: this.opts.flushIntervalMs ?? 60_000,
      rateLimitEnabled: this.opts.rateLimitEnabled ?? false,
    });
    this.flusher = flusher;
    this.live = live;
    this.deps = deps;
    this.app = app;
  }

  /** A new API instance on the same database and Redis, as after a restart; the old one flushes on its way out. */
  async restartApi(): Promise<void> {
    await this.flusher.stop();
    this.buildApp();
  }

  async addWorker(concurrency: number): Promise<WorkerRuntime> {
    const w = new WorkerRuntime({
      db: this.env.core.db,
      redis: this.env.redis(),
      redisPrefix: this.env.prefix,
      engine: this.opts.engine ?? createEngine({ kind: "builtin" }),
      logger: this.env.core.logger,
      concurrency,
      stepDelayMs: 0,
      lockDurationMs: this.opts.lockDurationMs ?? 30_000,
      progressIntervalMs: this.opts.progressIntervalMs ?? 0,
      maxJobAttempts: this.opts.maxJobAttempts,
    });
    await w.start();
    this.workers.push(w);
    return w;
  }

  http() {
    return request(this.app);
  }

  private servers: Server[] = [];
  private others: Wired[] = [];
  private replicaStops: (() => Promise<void>)[] = [];

  /** The clients another process would hold on this stack's database and Redis (a second API or reconciler); closed at stop. */
  otherCore(): Wired {
    const core = wireCore({
      databaseUrl: this.env.databaseUrl,
      redisUrl: this.env.redisUrl,
      redisPrefix: this.env.prefix,
      testTemplates: true,
      limits: this.env.core.limits,
      logger: this.env.core.logger,
      redisRole: "consumer",
    });
    this.others.push(core);
    return core;
  }

  /** Another API replica, wired as main.ts wires one (wireApi), on its own clients; stopped with the stack. */
  replica(opts: { rateLimitEnabled?: boolean } = {}): Express {
    const { app, flusher, live } = wireApi(this.otherCore(), {
      config: { adminToken: undefined, maxBodyBytes: 64 * 1024, webhookAllowPrivate: this.opts.webhookAllowPrivate ?? false },
      flushIntervalMs: 60_000,
      rateLimitEnabled: opts.rateLimitEnabled ?? false,
    });
    this.replicaStops.push(async () => {
      live.shutdown();
      await flusher.stop();
    });
    return app;
  }

  /** Serves an app (this stack's by default) on a real port, for clients that need one (SSE); closed at stop. */
  async serve(app: Express = this.app): Promise<string> {
    const server = createHttpServer(app);
    this.servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const stopReplica of this.replicaStops) await stopReplica();
    this.live?.shutdown();
    for (const s of this.servers) {
      s.closeAllConnections();
      s.close();
    }
    await this.flusher?.stop();
    await this.reconciler?.stop();
    await Promise.all(this.workers.map((w) => w.stop()));
    for (const core of this.others) await core.close();
    await this.env.teardown();
  }

  /** Polls GET /simulations/{id} until `done(job)` holds. */
  async waitJob(key: string, jobId: string, done: (job: Record<string, any>) => boolean, timeoutMs = 20_000) {
    return waitFor(
      async () => {
        const res = await this.http().get(`/simulations/${jobId}`).set("X-API-Key", key);
        return done(res.body) ? res.body : false;
      },
      { timeoutMs, what: `job ${jobId}` },
    );
  }

  submitBatch(key: string, body: unknown) {
    return this.http()
      .post("/simulations/batch")
      .set("X-API-Key", key)
      .send(body as object);
  }

  /** Job rows of a batch in request order, with their timing and attempts (straight from Postgres). */
  async batchRows(batchId: string) {
    return this.env.core.db.simulationJob.findMany({ where: { batchId }, orderBy: { batchIndex: "asc" } });
  }

  /**
   * Polls a batch until `done`, checking on every observed change that the
   * counters add up to total_jobs, that status only moves forward and that
   * started_at / completed_at never change once set. Returns the distinct states seen.
   */
  async watchBatch(key: string, batchId: string, done: (batch: Record<string, any>) => boolean, timeoutMs = 30_000) {
    const seen: Record<string, any>[] = [];
    await waitFor(
      async () => {
        const { body: b } = await this.http().get(`/simulations/batch/${batchId}`).set("X-API-Key", key);
        const prev = seen[seen.length - 1];
        if (!prev || JSON.stringify(prev) !== JSON.stringify(b)) {
          checkBatchStep(prev, b);
          seen.push(b);
        }
        return done(b);
      },
      { timeoutMs, intervalMs: 10, what: `batch ${batchId}` },
    );
    return seen;
  }

  async waitBatch(key: string, batchId: string, done: (batch: Record<string, any>) => boolean, timeoutMs = 30_000) {
    return waitFor(
      async () => {
        const res = await this.http().get(`/simulations/batch/${batchId}`).set("X-API-Key", key);
        return done(res.body) ? res.body : false;
      },
      { timeoutMs, what: `batch ${batchId}` },
    );
  }
}

export const FINAL_JOB = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
export const scripted = (config: Record<string, unknown>) => ({ template_id: "test/scripted", config });

/** Most intervals open at one instant; an interval ending when another starts does not overlap it. */
export function maxOverlap(rows: { startedAt: Date | null; completedAt: Date | null }[]): number {
  const edges: [number, number][] = [];
  for (const r of rows) {
    if (!r.startedAt) continue;
    edges.push([r.startedAt.getTime(), 1], [r.completedAt ? r.completedAt.getTime() : Number.MAX_SAFE_INTEGER, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (open += d));
  return max;
}

const STATUS_RANK: Record<string, number> = { PENDING: 0, RUNNING: 1, COMPLETED: 2, PARTIAL: 2, FAILED: 2, CANCELLED: 2 };

/** Invariants between two consecutive observations of one batch. */
export function checkBatchStep(prev: Record<string, any> | undefined, b: Record<string, any>): void {
  const p = b.progress;
  const sum = p.pending_jobs + p.running_jobs + p.completed_jobs + p.failed_jobs + p.cancelled_jobs;
  if (sum !== p.total_jobs) throw new Error(`counters add up to ${sum}, not ${p.total_jobs}: ${JSON.stringify(p)}`);
  const finished = p.completed_jobs + p.failed_jobs + p.cancelled_jobs;
  if (Math.abs(p.progress_percent - (finished / p.total_jobs) * 100) > 0.01)
    throw new Error(`progress_percent ${p.progress_percent} for ${finished}/${p.total_jobs}`);
  if (!prev) return;
  if (STATUS_RANK[b.status]! < STATUS_RANK[prev.status]!) throw new Error(`status went back from ${prev.status} to ${b.status}`);
  if (STATUS_RANK[prev.status] === 2 && prev.status !== b.status) throw new Error(`final status ${prev.status} changed to ${b.status}`);
  for (const f of ["started_at", "completed_at"]) {
    if (prev[f] !== null && prev[f] !== b[f]) throw new Error(`${f} changed from ${prev[f]} to ${b[f]}`);
  }
  if (b.progress.progress_percent < prev.progress.progress_percent) throw new Error("progress_percent went back");
  if (b.cost.actual_cost_usd < prev.cost.actual_cost_usd) throw new Error("actual_cost_usd went back");
}
