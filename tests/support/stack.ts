import type { Express } from "express";
import request from "supertest";
import { createApp, type ApiDeps } from "@simbatch/api";
import { ReconcilerRuntime } from "@simbatch/reconciler";
import { WorkerRuntime } from "@simbatch/worker";
import { createEngine, type SimulationEngine } from "@simbatch/engine";
import { TestEnv, waitFor, type TestEnvOptions } from "@simbatch/testing";

export interface StackOptions extends TestEnvOptions {
  workers?: number[];
  adminToken?: string;
  gates?: ApiDeps["gates"];
  engine?: SimulationEngine;
  lockDurationMs?: number;
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

  constructor(private readonly opts: StackOptions = {}) {
    this.env = new TestEnv(opts);
  }

  async start(): Promise<this> {
    await this.env.setup();
    this.deps = { ...this.env.core, config: { adminToken: this.opts.adminToken, maxBodyBytes: 64 * 1024 }, gates: this.opts.gates ?? [] };
    this.app = createApp(this.deps);
    for (const concurrency of this.opts.workers ?? [4]) await this.addWorker(concurrency);
    this.reconciler = new ReconcilerRuntime({
      deps: this.env.core, streamRedis: this.env.redis(), redisPrefix: this.env.prefix, sweepIntervalMs: 60_000, dispatchIntervalMs: 200,
    });
    await this.reconciler.start();
    return this;
  }

  async addWorker(concurrency: number): Promise<WorkerRuntime> {
    const w = new WorkerRuntime({
      db: this.env.core.db, redis: this.env.redis(), redisPrefix: this.env.prefix,
      engine: this.opts.engine ?? createEngine({ kind: "builtin" }), logger: this.env.core.logger,
      concurrency, stepDelayMs: 0, lockDurationMs: this.opts.lockDurationMs ?? 30_000, progressIntervalMs: 0,
    });
    await w.start();
    this.workers.push(w);
    return w;
  }

  http() {
    return request(this.app);
  }

  async stop(): Promise<void> {
    await this.reconciler?.stop();
    await Promise.all(this.workers.map((w) => w.stop()));
    await this.env.teardown();
  }

  /** Polls GET /simulations/{id} until `done(job)` holds. */
  async waitJob(key: string, jobId: string, done: (job: Record<string, any>) => boolean, timeoutMs = 20_000) {
    return waitFor(async () => {
      const res = await this.http().get(`/simulations/${jobId}`).set("X-API-Key", key);
      return done(res.body) ? res.body : false;
    }, { timeoutMs, what: `job ${jobId}` });
  }

  async waitBatch(key: string, batchId: string, done: (batch: Record<string, any>) => boolean, timeoutMs = 30_000) {
    return waitFor(async () => {
      const res = await this.http().get(`/simulations/batch/${batchId}`).set("X-API-Key", key);
      return done(res.body) ? res.body : false;
    }, { timeoutMs, what: `batch ${batchId}` });
  }
}

export const FINAL_JOB = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
export const scripted = (config: Record<string, unknown>) => ({ template_id: "test/scripted", config });
