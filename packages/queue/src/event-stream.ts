import { JobEventSchema, type JobEvent } from "@simbatch/contracts";
import type { Redis } from "./redis.ts";

export interface StreamEntry {
  id: string;
  /** null: the entry is not a valid event (see `error`); it is dead-lettered, never applied. */
  event: JobEvent | null;
  /** The entry's raw fields (kept with a dead letter). */
  fields: string[];
  /** Why the entry could not be parsed. */
  error?: string;
}

type RawEntries = [string, string[]][];

/** Parses each entry on its own: one bad entry never fails the others. */
export function parseEntries(raw: RawEntries): StreamEntry[] {
  return raw.map(([id, fields]) => {
    const list = Array.isArray(fields) ? fields.map(String) : [];
    const at = list.indexOf("e");
    const payload = at >= 0 && at % 2 === 0 ? list[at + 1] : undefined;
    if (payload === undefined) return { id, event: null, fields: list, error: "no event field" };
    let json: unknown;
    try {
      json = JSON.parse(payload);
    } catch (err) {
      return { id, event: null, fields: list, error: `invalid JSON: ${(err as Error).message}` };
    }
    const parsed = JobEventSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { id, event: null, fields: list, error: `not a job event: ${issue ? `${issue.path.join(".")}: ${issue.message}` : "invalid"}` };
    }
    return { id, event: parsed.data, fields: list };
  });
}

/** Dead letters and the stream itself outlive a week without writes at most. */
export const STREAM_TTL_MS = 7 * 24 * 3600 * 1000;
/** Dead letters kept (oldest trimmed first). */
const DEAD_LETTER_MAXLEN = 10_000;

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
    // Each write also pushes the stream's expiry out: only a stream nobody has
    // written for STREAM_TTL_MS (an abandoned prefix) expires.
    const pipeline = this.redis.pipeline();
    for (const e of entries) pipeline.xadd(this.key, "*", "e", e.payload);
    pipeline.pexpire(this.key, STREAM_TTL_MS);
    pipeline.exec().then(
      (results) =>
        entries.forEach((e, i) => {
          const err = results?.[i]?.[0];
          if (err) e.reject(err);
          else e.resolve();
        }),
      (err) => entries.forEach((e) => e.reject(err)),
    );
  }

  /**
   * Keeps entries that are not valid events in `<events>:dead` (raw fields, the
   * error, the original id; capped and expiring), so they can be inspected.
   */
  async deadLetter(entries: StreamEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const dead = `${this.key}:dead`;
    const multi = this.redis.multi();
    for (const e of entries) {
      multi.xadd(dead, "MAXLEN", "~", DEAD_LETTER_MAXLEN, "*", "id", e.id, "error", e.error ?? "invalid", "fields", JSON.stringify(e.fields));
    }
    multi.pexpire(dead, STREAM_TTL_MS);
    await multi.exec();
  }

  async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup("CREATE", this.key, this.group, "0", "MKSTREAM");
    } catch (err) {
      if (!String(err).includes("BUSYGROUP")) throw err;
    }
    await this.redis.pexpire(this.key, STREAM_TTL_MS);
  }

  /** New entries for this consumer, waiting up to `blockMs`; `from` "0": the ones it read and has not acknowledged. */
  async read(consumer: string, count: number, blockMs: number, from: ">" | "0" = ">"): Promise<StreamEntry[]> {
    const res = (await this.redis.xreadgroup("GROUP", this.group, consumer, "COUNT", count, "BLOCK", blockMs, "STREAMS", this.key, from)) as
      [string, RawEntries][] | null;
    return res?.[0] ? parseEntries(res[0][1].filter((e) => e !== null && Array.isArray(e[1]))) : [];
  }

  /** Takes over entries a crashed consumer read but never acknowledged. */
  async claimStale(consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    const res = (await this.redis.xautoclaim(this.key, this.group, consumer, minIdleMs, "0-0", "COUNT", count)) as [string, RawEntries];
    return parseEntries(res[1].filter((e) => e !== null && Array.isArray(e[1])));
  }

  /** Acknowledges and deletes applied entries, keeping the stream short. */
  async ack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis
      .multi()
      .xack(this.key, this.group, ...ids)
      .xdel(this.key, ...ids)
      .exec();
  }
}
