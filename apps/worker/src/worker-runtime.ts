import { randomBytes } from "node:crypto";
import { redisKeys, RUN_SIMULATION_JOB, SIMULATIONS_QUEUE } from "@simbatch/contracts";
import { ClaimBatcher, DEFAULT_MAX_JOB_ATTEMPTS, OutcomeWriter, ResultWriter } from "@simbatch/core";
import type { Db } from "@simbatch/db";
import type { SimulationEngine } from "@simbatch/engine";
import type { Logger } from "@simbatch/logger";
import { EventStream, JobMetrics, ProgressChannel, StopSignals, Worker, WorkerRegistry, type Job, type Redis } from "@simbatch/queue";
import { createRunSimulationHandler } from "./run-simulation.handler.ts";

export interface WorkerRuntimeOptions {
  db: Db;
  redis: Redis;
  redisPrefix: string;
  engine: SimulationEngine;
  logger: Logger;
  concurrency: number;
  stepDelayMs: number;
  /** BullMQ lock: a crashed worker's job is redelivered after about this long. Default 30 s. */
  lockDurationMs?: number;
  /** Default 200 ms. */
  progressIntervalMs?: number;
  /** A job's attempts are capped (MAX_JOB_ATTEMPTS); a claim past the cap ends it FAILED. Default 5. */
  maxJobAttempts?: number;
}

/** One handler per job name; the type makes a missing handler a compile error, and an unknown name fails the job. */
type Handlers = Record<typeof RUN_SIMULATION_JOB, (job: Job) => Promise<unknown>>;

const HEARTBEAT_MS = 2_000;

/** A worker process's moving parts, startable in-process (tests) or from main.ts. */
export class WorkerRuntime {
  readonly id = `worker-${process.pid}-${randomBytes(3).toString("hex")}`;
  private worker: Worker | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopping = false;
  private killed = false;
  private readonly registry: WorkerRegistry;

  constructor(private readonly opts: WorkerRuntimeOptions) {
    this.registry = new WorkerRegistry(opts.redis, redisKeys(opts.redisPrefix).workers);
  }

  async start(): Promise<void> {
    const keys = redisKeys(this.opts.redisPrefix);
    const logger = this.opts.logger;
    const progress = new ProgressChannel(this.opts.redis, keys.progress);
    // Claims and result writes of jobs that reach them within the same tick share one statement.
    const claims = new ClaimBatcher(
      this.opts.db,
      (started) => {
        for (const b of started) logger.info("batch state", { batch_id: b.batchId, from: "PENDING", to: "RUNNING", request_id: b.requestId });
      },
      this.opts.maxJobAttempts ?? DEFAULT_MAX_JOB_ATTEMPTS,
      // Live progress: a started job reads RUNNING in its streams before its first progress event.
      (jobs) => void progress.publish({ jobs, batches: [...new Set(jobs.flatMap(([, b]) => (b ? [b] : [])))] }).catch(() => undefined),
    );
    // A completed run is ended and charged by its result statement: the job metrics count it here, after commit
    // (a crash in between loses the count, never the job's state), as the reconciler counts the ends it applies.
    const jobMetrics = new JobMetrics(this.opts.redis, keys.jobMetrics);
    const results = new ResultWriter(
      this.opts.db,
      (ends) =>
        void jobMetrics
          .record(ends.map((e) => ({ template: e.templateId, status: "COMPLETED", durationSeconds: e.durationSeconds })))
          .catch((err: unknown) => logger.warn("job metrics not recorded", { error: String(err) })),
    );
    const outcomes = new OutcomeWriter(this.opts.db);
    const handlers: Handlers = {
      [RUN_SIMULATION_JOB]: createRunSimulationHandler({
        db: this.opts.db,
        claim: (jobId) => claims.claim(jobId),
        storeResult: (item) => results.store(item),
        recordOutcome: (item) => outcomes.record(item),
        events: new EventStream(this.opts.redis, keys.events, keys.eventsGroup),
        signals: new StopSignals(this.opts.redis, this.opts.redisPrefix),
        engine: this.opts.engine,
        logger: this.opts.logger,
        stepDelayMs: this.opts.stepDelayMs,
        progressIntervalMs: this.opts.progressIntervalMs ?? 200,
        // A killed worker does nothing more: its runs must not look like graceful shutdowns.
        shuttingDown: () => this.stopping && !this.killed,
      }),
    };
    this.worker = new Worker(
      SIMULATIONS_QUEUE,
      async (job) => {
        const handler = handlers[job.name as keyof Handlers];
        if (!handler) throw new Error(`no handler for job name ${job.name}`);
        return handler(job);
      },
      {
        connection: this.opts.redis,
        prefix: this.opts.redisPrefix,
        // BullMQ stores the name on each job it hands this worker: the operators' dashboard counts running jobs per worker by it.
        name: this.id,
        concurrency: this.opts.concurrency,
        lockDuration: this.opts.lockDurationMs ?? 30_000,
        stalledInterval: Math.max(1_000, Math.floor((this.opts.lockDurationMs ?? 30_000) / 2)),
        maxStalledCount: 5,
      },
    );
    this.worker.on("failed", (job, err) => {
      if (job) this.opts.logger.debug("bullmq job failed", { job_id: job.id, error: err.message, attempts_made: job.attemptsMade });
    });
    this.worker.on("error", (err) => this.opts.logger.warn("worker error", { error: err.message }));
    await this.worker.waitUntilReady();
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.opts.logger.info("worker started", { worker_id: this.id, concurrency: this.opts.concurrency });
  }

  private async beat(): Promise<void> {
    await this.registry.heartbeat(this.id, this.opts.concurrency, HEARTBEAT_MS * 3).catch(() => undefined);
  }

  /**
   * Simulates a crash (SIGKILL, lost host): the Redis connection drops at once, so
   * no lock renewal, event, heartbeat removal or BullMQ completion happens; the
   * in-flight runs fail on their next Redis call and their jobs are redelivered
   * by another worker's stalled-job check once the lock expires. Tests only.
   */
  async kill(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.killed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.opts.redis.disconnect();
    await this.worker?.close(true).catch(() => undefined);
    this.opts.logger.info("worker killed", { worker_id: this.id });
  }

  /**
   * Graceful stop: take no new jobs, let running ones stop at their next step
   * boundary (they are retried elsewhere, uncharged), close connections.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.registry.remove(this.id).catch(() => undefined);
    await this.worker?.close();
    this.opts.logger.info("worker stopped", { worker_id: this.id });
  }
}
