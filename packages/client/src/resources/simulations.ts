import { follow, JOB_STREAM, type StreamOptions } from "../events.ts";
import { newIdempotencyKey, seg, type CreateOptions, type Http, type RequestOptions } from "../http.ts";
import type { CancelJobRequest, ExportFormat, Job, JobEvent, JobList, JobStats, JobStatus, PageParams, SimulationRequest, SimulationResult } from "../types.ts";

export interface ListJobsParams extends PageParams {
  status?: JobStatus | Lowercase<JobStatus>;
}

const path = (id: string, rest = "") => `/simulations/${seg(id)}${rest}`;

/** `/simulations`: single jobs, and any job (batch jobs included) by id. */
export class Simulations {
  constructor(private readonly http: Http) {}

  /** `POST /simulations` → 202 job; carries an idempotency key like a batch create. */
  create(body: SimulationRequest, opts: CreateOptions = {}): Promise<Job> {
    const headers = { "Idempotency-Key": opts.idempotencyKey ?? newIdempotencyKey() };
    return this.http.json({ ...opts, method: "POST", path: "/simulations", body, headers, idempotent: true });
  }

  get(jobId: string, opts: RequestOptions = {}): Promise<Job> {
    return this.http.json({ ...opts, method: "GET", path: path(jobId), idempotent: true });
  }

  /** One page of the caller's jobs, newest first (`listJobs()` on the client iterates over all of them). */
  list(params: ListJobsParams = {}, opts: RequestOptions = {}): Promise<JobList> {
    return this.http.json({ ...opts, method: "GET", path: "/simulations", query: { ...params }, idempotent: true });
  }

  cancel(jobId: string, body: CancelJobRequest = {}, opts: RequestOptions = {}): Promise<Job> {
    return this.http.json({ ...opts, method: "POST", path: path(jobId, "/cancel"), body, idempotent: false });
  }

  /** A `COMPLETED` job's result (else 400 `InvalidState`). */
  result(jobId: string, opts: RequestOptions = {}): Promise<SimulationResult> {
    return this.http.json({ ...opts, method: "GET", path: path(jobId, "/result"), idempotent: true });
  }

  /** An export file as a streamed response: `body` is the stream, `Content-Type` says what it is. */
  export(jobId: string, format: ExportFormat, opts: RequestOptions = {}): Promise<Response> {
    return this.http.stream({ ...opts, method: "GET", path: path(jobId, `/exports/${seg(format)}`), headers: { Accept: "*/*" }, idempotent: true });
  }

  stats(opts: RequestOptions = {}): Promise<JobStats> {
    return this.http.json({ ...opts, method: "GET", path: "/simulations/stats", idempotent: true });
  }

  /** `GET /simulations/{id}/events` as an async iterator of job events, to the job's end. */
  events(jobId: string, opts: StreamOptions = {}): AsyncGenerator<JobEvent> {
    return follow(this.http, path(jobId, "/events"), JOB_STREAM, opts);
  }
}
