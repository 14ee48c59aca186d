import { SimbatchError } from "../errors.ts";
import { BATCH_STREAM, follow, type StreamOptions } from "../events.ts";
import { newIdempotencyKey, seg, type CreateOptions, type Http, type RequestOptions } from "../http.ts";
import { readNdjson } from "../streams.ts";
import type {
  Batch,
  BatchEvent,
  BatchList,
  BatchReport,
  BatchResultLine,
  BatchStats,
  BatchStatus,
  BatchWithJobs,
  CancelBatchRequest,
  CreateBatchRequest,
  DryRunResult,
  PageParams,
  WebhookDeliveryList,
} from "../types.ts";

export interface ListBatchesParams extends PageParams {
  status?: BatchStatus | Lowercase<BatchStatus>;
}

const path = (id: string, rest = "") => `/simulations/batch/${seg(id)}${rest}`;

/** `/simulations/batch`: batches, their jobs, results, report and control. */
export class Batches {
  constructor(private readonly http: Http) {}

  /** `POST /simulations/batch` → 202 batch (on a replayed key: the first response's batch). */
  create(body: CreateBatchRequest, opts: CreateOptions = {}): Promise<Batch> {
    const headers = { "Idempotency-Key": opts.idempotencyKey ?? newIdempotencyKey() };
    return this.http.json({ ...opts, method: "POST", path: "/simulations/batch", body, headers, idempotent: true });
  }

  /**
   * `POST /simulations/batch?dry_run=true`: every admission check, nothing written;
   * throws what the real create would. An API too old to know dry runs creates the
   * batch instead: that is thrown as `UnexpectedResponse` naming the batch.
   */
  async dryRun(body: CreateBatchRequest, opts: RequestOptions = {}): Promise<DryRunResult> {
    const res = await this.http.json<DryRunResult | Batch>({
      ...opts,
      method: "POST",
      path: "/simulations/batch",
      query: { dry_run: true },
      body,
      idempotent: true,
    });
    if ("dry_run" in res && res.dry_run === true) return res;
    const message = `The API does not support dry runs: it created batch ${(res as Batch).batch_id} (cancel it if unwanted)`;
    throw new SimbatchError({ status: 202, code: "UnexpectedResponse", message });
  }

  get(batchId: string, opts: RequestOptions = {}): Promise<Batch> {
    return this.http.json({ ...opts, method: "GET", path: path(batchId), idempotent: true });
  }

  /** One page, newest first (`listBatches()` on the client iterates over all of them). */
  list(params: ListBatchesParams = {}, opts: RequestOptions = {}): Promise<BatchList> {
    return this.http.json({ ...opts, method: "GET", path: "/simulations/batch", query: { ...params }, idempotent: true });
  }

  /** `{batch, jobs}`, jobs in request order. */
  jobs(batchId: string, opts: RequestOptions = {}): Promise<BatchWithJobs> {
    return this.http.json({ ...opts, method: "GET", path: path(batchId, "/jobs"), idempotent: true });
  }

  /** Not retried after a lost connection: a second cancel of a cancelled batch is a 400. */
  cancel(batchId: string, body: CancelBatchRequest = {}, opts: RequestOptions = {}): Promise<Batch> {
    return this.http.json({ ...opts, method: "POST", path: path(batchId, "/cancel"), body, idempotent: false });
  }

  /** Pausing a paused batch is a no-op 200, so this is safe to retry. */
  pause(batchId: string, opts: RequestOptions = {}): Promise<Batch> {
    return this.http.json({ ...opts, method: "POST", path: path(batchId, "/pause"), idempotent: true });
  }

  resume(batchId: string, opts: RequestOptions = {}): Promise<Batch> {
    return this.http.json({ ...opts, method: "POST", path: path(batchId, "/resume"), idempotent: true });
  }

  stats(opts: RequestOptions = {}): Promise<BatchStats> {
    return this.http.json({ ...opts, method: "GET", path: "/simulations/batch/stats", idempotent: true });
  }

  /** `GET .../results` as the raw NDJSON response, for saving it as it arrives. */
  resultsResponse(batchId: string, opts: RequestOptions = {}): Promise<Response> {
    return this.http.stream({ ...opts, method: "GET", path: path(batchId, "/results"), headers: { Accept: "application/x-ndjson" }, idempotent: true });
  }

  /** Each job's line of `GET .../results`, in request order, parsed as the stream arrives. */
  async *results(batchId: string, opts: RequestOptions = {}): AsyncGenerator<BatchResultLine> {
    yield* readNdjson<BatchResultLine>(await this.resultsResponse(batchId, opts));
  }

  /** The cross-run report: an object for json (the default), the document's text for markdown and csv. */
  report(batchId: string, opts?: RequestOptions & { format?: "json" }): Promise<BatchReport>;
  report(batchId: string, opts: RequestOptions & { format: "markdown" | "csv" }): Promise<string>;
  report(batchId: string, opts: RequestOptions & { format?: "json" | "markdown" | "csv" } = {}): Promise<BatchReport | string> {
    const { format = "json", ...rest } = opts;
    const call = { ...rest, method: "GET" as const, path: path(batchId, "/report"), query: { format }, idempotent: true };
    return format === "json" ? this.http.json<BatchReport>(call) : this.http.text({ ...call, headers: { Accept: "*/*" } });
  }

  /** `GET .../events` as an async iterator of events, to the batch's end (see `follow`). */
  events(batchId: string, opts: StreamOptions = {}): AsyncGenerator<BatchEvent> {
    return follow(this.http, path(batchId, "/events"), BATCH_STREAM, opts);
  }

  /** Attempts to deliver the batch's webhook, oldest first. */
  webhookDeliveries(batchId: string, opts: RequestOptions = {}): Promise<WebhookDeliveryList> {
    return this.http.json({ ...opts, method: "GET", path: path(batchId, "/webhook-deliveries"), idempotent: true });
  }
}
