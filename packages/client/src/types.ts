/**
 * The client's wire types, inferred from the zod schemas the API validates with
 * (packages/contracts): a field renamed there fails to compile here and in every
 * caller. Type-only imports: the built client carries no zod at run time.
 */
import type {
  BatchListSchema,
  BatchReportSchema,
  BatchResultLineSchema,
  BatchSchema,
  BatchStatsSchema,
  BatchWithJobsSchema,
  CancelBatchRequestSchema,
  CancelRequestSchema,
  CreateBatchRequestSchema,
  ErrorBodySchema,
  FieldIssueSchema,
  JobListSchema,
  JobSchema,
  JobStatsSchema,
  SimulationRequestSchema,
  SimulationResultSchema,
  TemplateListSchema,
  TemplateSchema,
  UsageHistorySchema,
  UsageSchema,
} from "@simbatch/contracts";
import type { z } from "zod";

/**
 * A response object without the open index signature of zod's loose objects, so
 * that a misspelt or renamed field is a compile error rather than `unknown`.
 * Plain records (metadata, per-grade counts) keep theirs: they have no named keys.
 */
export type Known<T> = T extends readonly (infer U)[]
  ? Known<U>[]
  : T extends object
    ? keyof { [K in keyof T as string extends K ? never : K]: 0 } extends never
      ? T
      : { [K in keyof T as string extends K ? never : K]: Known<T[K]> }
    : T;

/** Body of `POST /simulations` and each element of a batch's `simulations`. */
export type SimulationRequest = z.input<typeof SimulationRequestSchema>;

/** Body of `POST /simulations/batch`. */
export type CreateBatchRequest = Omit<z.input<typeof CreateBatchRequestSchema>, "simulations"> & {
  simulations: SimulationRequest[];
  /** Batch control: an absolute https URL POSTed when the batch ends (contract: Webhooks). */
  webhook_url?: string | null;
};

export type CancelJobRequest = z.input<typeof CancelRequestSchema>;
export type CancelBatchRequest = z.input<typeof CancelBatchRequestSchema>;

export type Job = Known<z.infer<typeof JobSchema>>;
export type JobStatus = Job["status"];
export type Batch = Known<z.infer<typeof BatchSchema>> & BatchControlFields;
export type BatchStatus = Batch["status"];
export type BatchWithJobs = Omit<Known<z.infer<typeof BatchWithJobsSchema>>, "batch"> & { batch: Batch };
export type JobList = Known<z.infer<typeof JobListSchema>>;
export type BatchList = Omit<Known<z.infer<typeof BatchListSchema>>, "batches"> & { batches: Batch[] };
export type JobStats = Known<z.infer<typeof JobStatsSchema>>;
export type BatchStats = Known<z.infer<typeof BatchStatsSchema>>;
export type Template = Known<z.infer<typeof TemplateSchema>>;
export type TemplateList = Known<z.infer<typeof TemplateListSchema>>;
export type SimulationResult = Known<z.infer<typeof SimulationResultSchema>>;
export type BatchResultLine = Known<z.infer<typeof BatchResultLineSchema>>;
export type BatchReport = Known<z.infer<typeof BatchReportSchema>>;
export type Usage = Known<z.infer<typeof UsageSchema>>;
export type UsageHistory = Known<z.infer<typeof UsageHistorySchema>>;
export type ErrorBody = Known<z.infer<typeof ErrorBodySchema>>;
export type FieldIssue = Known<z.infer<typeof FieldIssueSchema>>;

export type ExportFormat = "json" | "markdown" | "pdf";
export type ReportFormat = "json" | "markdown" | "csv";

/** Fields the batch object gains with batch control (contract: Batch control, live progress and webhooks). */
export interface BatchControlFields {
  paused?: boolean;
  paused_at?: string | null;
  eta_seconds?: number | null;
  projected_cost_usd?: number;
  webhook_url?: string | null;
}

/** `POST /simulations/batch?dry_run=true` when the batch is admissible. */
export interface DryRunResult {
  dry_run: true;
  total_jobs: number;
  estimated_cost_usd: number;
  job_estimates_usd: number[];
  /** −1 when unlimited, else what would remain after this batch. */
  simulations_remaining: number;
  cost_remaining_usd: number;
}

export interface WebhookSecret {
  secret: string;
}

export interface WebhookDelivery {
  webhook_id: string;
  type: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  delivered: boolean;
  created_at: string;
}

export interface WebhookDeliveryList {
  deliveries: WebhookDelivery[];
}

/** `event: job` of a batch's event stream: what changed for one job. */
export interface JobChange {
  job_id: string;
  status: JobStatus;
  progress_percent: number;
  cost_usd: number;
  error_message: string | null;
}

/** One event of `GET /simulations/batch/{id}/events`. */
export type BatchEvent = { type: "batch"; id: string | undefined; data: Batch } | { type: "job"; id: string | undefined; data: JobChange };

/** One event of `GET /simulations/{id}/events`. */
export type JobEvent = { type: "job"; id: string | undefined; data: Job };

/** A page request; `page` from 1, `page_size` 1..100 (API default 20). */
export interface PageParams {
  page?: number;
  page_size?: number;
}
