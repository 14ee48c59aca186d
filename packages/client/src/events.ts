import { ConnectionError } from "./errors.ts";
import type { Http, RequestOptions } from "./http.ts";
import { backoffMs, sleep } from "./retry.ts";
import { readEvents, type RawEvent } from "./streams.ts";
import type { Batch, BatchEvent, Job, JobChange, JobEvent } from "./types.ts";

export interface StreamOptions extends Pick<RequestOptions, "signal" | "timeoutMs" | "requestId"> {
  /** Resume after this event id (sent as `Last-Event-ID`; the server answers with a fresh snapshot). */
  lastEventId?: string;
}

const FINISHED = new Set(["COMPLETED", "PARTIAL", "FAILED", "CANCELLED"]);

/** A batch whose status is final and whose last job has finished (a cancelled batch drains first). */
export const batchDone = (b: Batch): boolean => FINISHED.has(b.status) && b.completed_at !== null;
export const jobDone = (j: Job): boolean => FINISHED.has(j.status);

export interface StreamKind<E> {
  parse: (raw: RawEvent) => E | null;
  /** The event after which nothing more can change. */
  done: (event: E) => boolean;
  /**
   * Whether the state this event shows is final, so that the server closing the
   * stream after it is the stream's normal end; undefined for events that do not
   * tell (a batch stream's job events).
   */
  final: (event: E) => boolean | undefined;
}

/**
 * Follows one event stream to its end: its terminal event, or the server closing
 * it after a final state. A stream that ends or breaks before that is opened
 * again with `Last-Event-ID` (the server sends a fresh snapshot, so nothing stale
 * is replayed), up to the client's `maxRetries` times in a row without an event.
 */
export async function* follow<E extends { id: string | undefined }>(
  http: Http,
  path: string,
  kind: StreamKind<E>,
  opts: StreamOptions = {},
): AsyncGenerator<E> {
  let lastId = opts.lastEventId;
  let failures = 0;
  for (;;) {
    let settled = false;
    const res = await http.stream({
      method: "GET",
      path,
      idempotent: true,
      headers: { Accept: "text/event-stream", ...(lastId === undefined ? {} : { "Last-Event-ID": lastId }) },
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      requestId: opts.requestId,
    });
    let broke: unknown = null;
    try {
      for await (const raw of readEvents(res)) {
        const event = kind.parse(raw);
        if (!event) continue;
        if (event.id !== undefined) lastId = event.id;
        failures = 0;
        settled = kind.final(event) ?? settled;
        yield event;
        if (kind.done(event)) return;
      }
      if (settled) return;
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      broke = err;
    }
    if (++failures > http.retryPolicy.maxRetries) {
      throw new ConnectionError({
        status: null,
        code: "ConnectionError",
        message: `Event stream ${path} ended before its terminal event`,
        cause: broke ?? undefined,
      });
    }
    await sleep(backoffMs(http.retryPolicy, failures - 1), opts.signal);
  }
}

const json = (raw: RawEvent): unknown => JSON.parse(raw.data);

/** `GET /simulations/batch/{id}/events`: `batch` events carry the batch, `job` events what changed for one job. */
export const BATCH_STREAM: StreamKind<BatchEvent> = {
  parse: (raw) => {
    if (raw.event === "batch") return { type: "batch", id: raw.id, data: json(raw) as Batch };
    if (raw.event === "job") return { type: "job", id: raw.id, data: json(raw) as JobChange };
    return null;
  },
  done: (e) => e.type === "batch" && batchDone(e.data),
  final: (e) => (e.type === "batch" ? FINISHED.has(e.data.status) : undefined),
};

/** `GET /simulations/{id}/events`: `job` events carry the job. */
export const JOB_STREAM: StreamKind<JobEvent> = {
  parse: (raw) => (raw.event === "job" ? { type: "job", id: raw.id, data: json(raw) as Job } : null),
  done: (e) => jobDone(e.data),
  final: (e) => jobDone(e.data),
};
