import { JobEventSchema, type JobEvent } from "@simbatch/contracts";
import type { Redis } from "./redis.ts";

export interface StreamEntry {
  id: string;
  event: JobEvent | null;
}

type RawEntries = [string, string[]][];

function parseEntries(raw: RawEntries): StreamEntry[] {
  return raw.map(([id, fields]) => {
    const payload = fields[fields.indexOf("e") + 1];
    const parsed = payload ? JobEventSchema.safeParse(JSON.parse(payload)) : null;
    return { id, event: parsed?.success ? parsed.data : null };
  });
}

/** Workers append lifecycle events; reconcilers read them in a consumer group. */
export class EventStream {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly group: string,
  ) {}

  private outbox: { payload: string; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private flushScheduled = false;

  /**
   * Appends an event. Events published within the same tick go to Redis
   * together, in order, in one pipeline (one write, one round trip); each
   * caller's promise settles once that pipeline has answered, with its own
   * entry's error, or the pipeline's error for every caller of the flush.
   */
  publish(event: JobEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ payload: JSON.stringify(event), resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const entries = this.outbox;
    this.outbox = [];
    if (entries.length === 1) {
      const [only] = entries;
      this.redis.xadd(this.key, "*", "e", only!.payload).then(() => only!.resolve(), only!.reject);
      return;
    }
    const pipeline = this.redis.pipeline();
    for (const e of entries) pipeline.xadd(this.key, "*", "e", e.payload);
    pipeline.exec().then(
      (results) => entries.forEach((e, i) => {
        const err = results?.[i]?.[0];
        if (err) e.reject(err);
        else e.resolve();
      }),
      (err) => entries.forEach((e) => e.reject(err)),
    );
  }

  async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup("CREATE", this.key, this.group, "0", "MKSTREAM");
    } catch (err) {
      if (!String(err).includes("BUSYGROUP")) throw err;
    }
  }

  /** New entries for this consumer, waiting up to `blockMs`. */
  async read(consumer: string, count: number, blockMs: number): Promise<StreamEntry[]> {
    const res = (await this.redis.xreadgroup(
      "GROUP", this.group, consumer, "COUNT", count, "BLOCK", blockMs, "STREAMS", this.key, ">",
    )) as [string, RawEntries][] | null;
    return res?.[0] ? parseEntries(res[0][1]) : [];
  }

  /** Takes over entries a crashed consumer read but never acknowledged. */
  async claimStale(consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    const res = (await this.redis.xautoclaim(this.key, this.group, consumer, minIdleMs, "0-0", "COUNT", count)) as [string, RawEntries];
    return parseEntries(res[1].filter((e) => e !== null && Array.isArray(e[1])));
  }

  /** Acknowledges and deletes applied entries, keeping the stream short. */
  async ack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.multi().xack(this.key, this.group, ...ids).xdel(this.key, ...ids).exec();
  }
}
