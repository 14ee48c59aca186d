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
  BatchStreamJobSchema,
  BatchWithJobsSchema,
  CancelBatchRequestSchema,
  CancelRequestSchema,
  CreateBatchRequestSchema,
  DryRunSchema,
  ErrorBodySchema,
  ExportFormat as ExportFormatSchema,
  FieldIssueSchema,
  JobListSchema,
  JobSchema,
  JobStatsSchema,
  REPORT_FORMATS,
  SimulationRequestSchema,
  SimulationResultSchema,
  TemplateListSchema,
  TemplateSchema,
  UsageHistorySchema,
  UsageSchema,
  WebhookDeliveryListSchema,
  WebhookDeliverySchema,
  WebhookEventSchema,
  WebhookSecretSchema,
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
  /** Each validated by the API as a simulation request (the batch schema leaves them open). */
  simulations: SimulationRequest[];
};

export type CancelJobRequest = z.input<typeof CancelRequestSchema>;
export type CancelBatchRequest = z.input<typeof CancelBatchRequestSchema>;

export type Job = Known<z.infer<typeof JobSchema>>;
export type JobStatus = Job["status"];
export type Batch = Known<z.infer<typeof BatchSchema>>;
export type BatchStatus = Batch["status"];
export type BatchWithJobs = Known<z.infer<typeof BatchWithJobsSchema>>;
export type JobList = Known<z.infer<typeof JobListSchema>>;
export type BatchList = Known<z.infer<typeof BatchListSchema>>;
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

export type ExportFormat = z.infer<typeof ExportFormatSchema>;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** `POST /simulations/batch?dry_run=true` when the batch is admissible. */
export type DryRunResult = Known<z.infer<typeof DryRunSchema>>;
export type WebhookSecret = Known<z.infer<typeof WebhookSecretSchema>>;
export type WebhookDelivery = Known<z.infer<typeof WebhookDeliverySchema>>;
export type WebhookDeliveryList = Known<z.infer<typeof WebhookDeliveryListSchema>>;
/** The body POSTed to a batch's `webhook_url` when it ends. */
export type WebhookEvent = Omit<Known<z.infer<typeof WebhookEventSchema>>, "batch"> & { batch: Batch };
/** `event: job` of a batch's event stream: what changed for one job. */
export type JobChange = Known<z.infer<typeof BatchStreamJobSchema>>;

/** One event of `GET /simulations/batch/{id}/events`. */
export type BatchEvent = { type: "batch"; id: string | undefined; data: Batch } | { type: "job"; id: string | undefined; data: JobChange };

/** One event of `GET /simulations/{id}/events`. */
export type JobEvent = { type: "job"; id: string | undefined; data: Job };

/** A page request; `page` from 1, `page_size` 1..100 (API default 20). */
export interface PageParams {
  page?: number;
  page_size?: number;
}
