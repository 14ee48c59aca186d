import { Queue, Worker, type Job } from "bullmq";
import type { Redis } from "./redis.ts";

/** Persisted names: never rename (queued deliveries carry them). */
export const WEBHOOKS_QUEUE = "webhooks";
const DELIVER_JOB = "deliver";

/** One announcement of a batch's end; `webhookId` is stable per event (the receiver's dedupe key). */
export interface WebhookJobData {
  webhookId: string;
  batchId: string;
  type: string;
  /** When the event happened (the payload's created_at), ISO-8601. */
  createdAt: string;
}

export interface WebhookQueueOptions {
  /** Attempts per event (contract: up to 8). */
  attempts: number;
  /** First retry delay; each later one doubles (WEBHOOK_RETRY_BASE_MS). */
  backoffMs: number;
}

/**
 * Webhook deliveries in their own BullMQ queue: they survive restarts of every
 * role, retry with exponential backoff, and a receiver that keeps failing only
 * ever occupies this queue, never the simulations or the reconciler's loop.
 */
export class WebhookQueue {
  readonly queue: Queue<WebhookJobData>;

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly opts: WebhookQueueOptions,
  ) {
    this.queue = new Queue<WebhookJobData>(WEBHOOKS_QUEUE, { connection, prefix });
  }

  /** Adds with the webhook id as BullMQ job id, so announcing an event twice is a no-op. */
  async enqueue(data: WebhookJobData): Promise<void> {
    await this.queue.add(DELIVER_JOB, data, {
      jobId: data.webhookId,
      attempts: this.opts.attempts,
      backoff: { type: "exponential", delay: this.opts.backoffMs },
      removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
      removeOnFail: { age: 30 * 24 * 3600, count: 10_000 },
    });
  }

  /**
   * Starts a consumer on its own connection. `deliver` gets the event and the
   * attempt number (1-based); throwing schedules the next attempt, until the last.
   */
  consume(connection: Redis, deliver: (data: WebhookJobData, attempt: number) => Promise<void>, concurrency: number): Worker<WebhookJobData> {
    return new Worker<WebhookJobData>(WEBHOOKS_QUEUE, (job: Job<WebhookJobData>) => deliver(job.data, job.attemptsMade + 1), {
      connection,
      prefix: this.prefix,
      concurrency,
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
