import { ConnectionError, MethodNotAllowed, NotFound } from "./errors.ts";
import { batchDone, type StreamOptions } from "./events.ts";
import { Http, type ClientOptions, type RequestOptions } from "./http.ts";
import { UsageApi, Templates, Webhooks } from "./resources/account.ts";
import { Batches, type ListBatchesParams } from "./resources/batches.ts";
import { Simulations, type ListJobsParams } from "./resources/simulations.ts";
import { sleep } from "./retry.ts";
import type { Batch, BatchEvent, Job } from "./types.ts";

export interface WaitOptions {
  /** Called with each new state of the batch (from the event stream, or each changed poll). */
  onProgress?: (batch: Batch) => void;
  signal?: AbortSignal;
  /** Poll interval when the event stream is unavailable. Default 1,000 ms. */
  pollIntervalMs?: number;
}

/**
 * The simbatch API client.
 *
 * ```ts
 * const client = new Simbatch({ baseUrl: "http://127.0.0.1:8080", apiKey: process.env.SIMBATCH_API_KEY });
 * const batch = await client.batches.create({ simulations: [{ template_id: "board_meeting" }] });
 * const done = await client.waitForBatch(batch.batch_id, { onProgress: (b) => console.log(b.progress.progress_percent) });
 * ```
 */
export class Simbatch {
  readonly http: Http;
  readonly simulations: Simulations;
  readonly batches: Batches;
  readonly usage: UsageApi;
  readonly templates: Templates;
  readonly webhooks: Webhooks;

  constructor(opts: ClientOptions = {}) {
    this.http = new Http(opts);
    this.simulations = new Simulations(this.http);
    this.batches = new Batches(this.http);
    this.usage = new UsageApi(this.http);
    this.templates = new Templates(this.http);
    this.webhooks = new Webhooks(this.http);
  }

  /** Every batch of the caller, newest first, fetching page after page as the iteration goes. */
  listBatches(params: ListBatchesParams = {}, opts: RequestOptions = {}): AsyncGenerator<Batch> {
    return allPages(
      (page) => this.batches.list({ ...params, page }, opts).then((r) => ({ items: r.batches, ...r })),
      params.page,
      (b) => b.batch_id,
    );
  }

  /** Every job of the caller (batch jobs included), newest first, page after page. */
  listJobs(params: ListJobsParams = {}, opts: RequestOptions = {}): AsyncGenerator<Job> {
    return allPages(
      (page) => this.simulations.list({ ...params, page }, opts).then((r) => ({ items: r.jobs, ...r })),
      params.page,
      (j) => j.job_id,
    );
  }

  /** A batch's live events (`event: batch` and `event: job`) until it ends. */
  streamBatch(batchId: string, opts: StreamOptions = {}): AsyncGenerator<BatchEvent> {
    return this.batches.events(batchId, opts);
  }

  /**
   * Resolves with the batch once it has ended (final status, last job finished).
   * Follows the event stream; when the API has none (404/405) or it cannot be
   * kept open, polls `GET /simulations/batch/{id}` instead.
   */
  async waitForBatch(batchId: string, opts: WaitOptions = {}): Promise<Batch> {
    let last: Batch | undefined;
    try {
      for await (const event of this.streamBatch(batchId, { signal: opts.signal })) {
        if (event.type !== "batch") continue;
        last = event.data;
        opts.onProgress?.(last);
      }
      if (last && batchDone(last)) return last;
    } catch (err) {
      if (!(err instanceof NotFound || err instanceof MethodNotAllowed || err instanceof ConnectionError)) throw err;
    }
    return this.pollBatch(batchId, opts, last);
  }

  private async pollBatch(batchId: string, opts: WaitOptions, seen: Batch | undefined): Promise<Batch> {
    let previous = seen === undefined ? "" : JSON.stringify(seen);
    for (;;) {
      const batch = await this.batches.get(batchId, { signal: opts.signal });
      const now = JSON.stringify(batch);
      if (now !== previous) opts.onProgress?.(batch);
      previous = now;
      if (batchDone(batch)) return batch;
      await sleep(opts.pollIntervalMs ?? 1_000, opts.signal);
    }
  }
}

interface Page<T> {
  items: T[];
  total: number;
  page: number;
  page_size: number;
}

/**
 * Items of every page from `first` on. Lists are newest first, so an item created
 * during the walk pushes older ones onto the next page: ids already yielded are
 * skipped rather than yielded twice.
 */
async function* allPages<T>(fetchPage: (page: number) => Promise<Page<T>>, first = 1, idOf: (item: T) => string): AsyncGenerator<T> {
  const seen = new Set<string>();
  for (let page = first; ; page++) {
    const res = await fetchPage(page);
    for (const item of res.items) {
      const id = idOf(item);
      if (seen.has(id)) continue;
      seen.add(id);
      yield item;
    }
    if (res.items.length === 0 || res.page * res.page_size >= res.total) return;
  }
}
