import { Queue, type JobsOptions } from "bullmq";
import { redisKeys, RUN_SIMULATION_JOB, SIMULATIONS_QUEUE, toBullPriority, type RunSimulationPayload } from "@simbatch/contracts";
import type { Redis } from "./redis.ts";

/** Job options for every simulation: bounded retention, retries for infrastructure errors. */
export const SIMULATION_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: "exponential", delay: 1_000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
};

export interface ReleasedJob {
  jobId: string;
  priority: number;
  requestId: string | null;
  /** Jobs its owner had released or running when it was released (toBullPriority); 0 when unknown (a repair). */
  share?: number;
}

const LIVE_STATES = new Set(["active", "waiting", "waiting-children", "delayed", "prioritized"]);

export class SimulationQueue {
  readonly queue: Queue<RunSimulationPayload>;

  private readonly wakeChannel: string;

  constructor(
    private readonly connection: Redis,
    prefix: string,
  ) {
    this.queue = new Queue<RunSimulationPayload>(SIMULATIONS_QUEUE, { connection, prefix });
    this.wakeChannel = redisKeys(prefix).dispatchWake;
  }

  /** Asks the reconcilers for a dispatch pass; answers how many were listening. */
  async wakeDispatchers(): Promise<number> {
    return this.connection.publish(this.wakeChannel, "1");
  }

  /** Adds with the row id as BullMQ job id, so adding twice is a no-op. */
  async add(job: ReleasedJob): Promise<void> {
    await this.queue.add(
      RUN_SIMULATION_JOB,
      { jobId: job.jobId, requestId: job.requestId },
      { ...SIMULATION_JOB_OPTIONS, jobId: job.jobId, priority: toBullPriority(job.priority, job.share) },
    );
  }

  /** Adds many in one round trip (BullMQ addBulk); as `add`, each is a no-op when its id exists. */
  async addMany(jobs: ReleasedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.queue.addBulk(
      jobs.map((job) => ({
        name: RUN_SIMULATION_JOB,
        data: { jobId: job.jobId, requestId: job.requestId },
        opts: { ...SIMULATION_JOB_OPTIONS, jobId: job.jobId, priority: toBullPriority(job.priority, job.share) },
      })),
    );
  }

  /**
   * Replaces a lost or finished BullMQ job (sweep repair). A job that is still
   * live is left alone.
   */
  async readd(job: ReleasedJob): Promise<boolean> {
    const existing = await this.queue.getJob(job.jobId);
    if (existing) {
      const state = await existing.getState();
      if (LIVE_STATES.has(state)) return false;
      await existing.remove().catch(() => undefined);
    }
    await this.add(job);
    return true;
  }

  /** BullMQ's view of a job: `missing` when Redis holds nothing for it. */
  async state(jobId: string): Promise<string> {
    const job = await this.queue.getJob(jobId);
    return job ? await job.getState() : "missing";
  }

  /** Removes a waiting job; a job a worker holds cannot be removed (its claim guard stops it). */
  async removeWaiting(jobId: string): Promise<void> {
    await this.queue.remove(jobId).catch(() => undefined);
  }

  /**
   * Jobs BullMQ holds as active, counted by the worker that took them (BullMQ
   * stores the Worker's `name`, our worker id, on each job it moves to active).
   * Reads at most `limit` jobs: active jobs are bounded by the fleet's capacity.
   */
  async activeByWorker(limit = 2_000): Promise<{ byWorker: Record<string, number>; total: number }> {
    const jobs = await this.queue.getActive(0, limit - 1);
    const byWorker: Record<string, number> = {};
    for (const job of jobs) {
      const worker = job.processedBy ?? "unknown";
      byWorker[worker] = (byWorker[worker] ?? 0) + 1;
    }
    return { byWorker, total: jobs.length };
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
