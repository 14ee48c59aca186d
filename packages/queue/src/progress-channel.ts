import type { Redis } from "./redis.ts";

/**
 * What changed, as told to live-progress streams: jobs (with their batch, so a
 * batch stream hears about its jobs) and batches whose row changed. Only ids: a
 * listener that cares reads the state once for all of its streams.
 */
export interface ProgressChange {
  jobs: [jobId: string, batchId: string | null][];
  batches: string[];
}

/**
 * Redis pub/sub channel of progress changes: reconcilers (after applying events),
 * workers (after claims) and API processes (after cancel, pause, resume) publish;
 * each API process subscribes once and serves all of its streams from it, so
 * streams work behind any number of API replicas. Pub/sub is fire-and-forget: a
 * missed message delays a stream's update to its next change or its periodic
 * refresh, never loses its terminal event (see apps/api live streams).
 */
export class ProgressChannel {
  constructor(
    private readonly redis: Redis,
    readonly channel: string,
  ) {}

  async publish(change: ProgressChange): Promise<void> {
    if (change.jobs.length === 0 && change.batches.length === 0) return;
    await this.redis.publish(this.channel, JSON.stringify(change));
  }

  /** Subscribes `connection` (dedicated: a subscribed connection can do nothing else) and calls `onChange` per message. */
  static async subscribe(connection: Redis, channel: string, onChange: (change: ProgressChange) => void): Promise<void> {
    connection.on("message", (ch: string, message: string) => {
      if (ch !== channel) return;
      let parsed: ProgressChange;
      try {
        parsed = JSON.parse(message) as ProgressChange;
      } catch {
        return;
      }
      if (!Array.isArray(parsed.jobs) || !Array.isArray(parsed.batches)) return;
      onChange(parsed);
    });
    await connection.subscribe(channel);
  }
}
