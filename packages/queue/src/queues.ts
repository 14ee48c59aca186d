import { Queue } from "bullmq";
import { SIMULATIONS_QUEUE } from "@simbatch/contracts";
import type { Redis } from "./redis.ts";
import { WEBHOOKS_QUEUE } from "./webhook-queue.ts";

export type { Queue };

/**
 * Every BullMQ queue the service uses, by name. A new queue is added here (and
 * only here) to be shown by the operators' queue dashboard (/admin/queues).
 */
export function allQueueNames(): readonly string[] {
  return [SIMULATIONS_QUEUE, WEBHOOKS_QUEUE];
}

/**
 * One BullMQ `Queue` per name of `allQueueNames()`, for reading (the queue
 * dashboard). A queue this process already holds is reused (pass it in `held`);
 * the others are opened on first use, on the shared connection, and closed by
 * `close()`. Opening is lazy so that roles which never read them open nothing.
 */
export class QueueSet {
  private opened: Queue[] | null = null;
  private readonly own: Queue[] = [];

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly held: readonly Queue[] = [],
  ) {}

  /** The queues in `allQueueNames()` order. */
  all(): Queue[] {
    if (this.opened) return this.opened;
    this.opened = allQueueNames().map((name) => {
      const existing = this.held.find((q) => q.name === name);
      if (existing) return existing;
      const queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
      this.own.push(queue);
      return queue;
    });
    return this.opened;
  }

  /** Closes the queues this set opened (held ones belong to their owner). */
  async close(): Promise<void> {
    await Promise.all(this.own.map((q) => q.close().catch(() => undefined)));
  }
}
