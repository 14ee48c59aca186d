import { ERROR_CODES, type ErrorCode } from "@simbatch/errors";
import { z } from "zod";

/**
 * Response bodies, written from the wire contract (shared/spec/api-contract.md),
 * not from the service's views: they are what conformance is checked against.
 * Every field the contract lists is required (null where it may be absent: the
 * contract has every optional field present as null). Objects are loose because
 * the contract allows extra fields (the job view echoes config and the like).
 */

const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
export const Timestamp = z.string().regex(TIMESTAMP_RE, "must be an ISO-8601 UTC timestamp ending in Z").meta({ format: "date-time" });
export const JobId = z.string().regex(/^sim_[0-9a-f]{12}$/, "must be sim_ + 12 lowercase hex");
export const BatchId = z.string().regex(/^batch_[0-9a-f]{12}$/, "must be batch_ + 12 lowercase hex");
export const Period = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "must be YYYY-MM");

export const JobStatus = z.enum(["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]);
export const BatchStatus = z.enum(["PENDING", "RUNNING", "COMPLETED", "PARTIAL", "FAILED", "CANCELLED"]);
export const StopReason = z.enum(["FAIL_FAST", "BUDGET_EXHAUSTED", "CANCELLED_BY_USER", "QUOTA_EXHAUSTED"]);
export const TemporalMode = z.enum(["FORWARD", "PORTAL", "BRANCHING", "DIRECTORIAL", "CYCLICAL"]);
export const UserTier = z.enum(["free", "basic", "pro", "enterprise"]);
export const TemplateTier = z.enum(["quick", "standard", "comprehensive"]);
export const ExportFormat = z.enum(["json", "markdown", "pdf"]);

const count = z.number().int().min(0);
/** USD amounts are JSON numbers (not necessarily whole). */
const money = z.number().min(0);
const percent = z.number().min(0).max(100);
const jsonObject = z.record(z.string(), z.unknown());
/** Limits and remainders use −1 for "unlimited". */
const limitInt = z.number().int().min(-1);
const limitUsd = z.number().min(-1);

export const JobSchema = z.looseObject({
  job_id: JobId,
  batch_id: BatchId.nullable(),
  status: JobStatus,
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  completed_at: Timestamp.nullable(),
  template_id: z.string().nullable(),
  description: z.string().nullable(),
  entity_count: z.number().int().min(1).max(20),
  timepoint_count: z.number().int().min(1).max(20),
  temporal_mode: TemporalMode,
  progress_percent: percent,
  current_step: z.string().nullable(),
  attempts: count,
  estimated_cost_usd: money,
  cost_usd: money,
  tokens_used: count,
  error_message: z.string().nullable(),
  cancel_reason: z.string().nullable(),
  owner_id: z.string(),
  metadata: jsonObject.nullable(),
});

export const BatchProgressSchema = z.looseObject({
  total_jobs: count,
  pending_jobs: count,
  running_jobs: count,
  completed_jobs: count,
  failed_jobs: count,
  cancelled_jobs: count,
  progress_percent: percent,
});

export const BatchCostSchema = z.looseObject({
  estimated_cost_usd: money,
  actual_cost_usd: money,
  budget_cap_usd: money.nullable(),
  budget_remaining_usd: money.nullable(),
  tokens_used: count,
});

export const BatchSchema = z.looseObject({
  batch_id: BatchId,
  status: BatchStatus,
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  completed_at: Timestamp.nullable(),
  priority: z.number().int().min(0).max(100),
  fail_fast: z.boolean(),
  parallel_jobs: z.number().int().min(1).max(100),
  progress: BatchProgressSchema,
  cost: BatchCostSchema,
  job_ids: z.array(JobId),
  stop_reason: StopReason.nullable(),
  error_message: z.string().nullable(),
  cancel_reason: z.string().nullable(),
  owner_id: z.string(),
  metadata: jsonObject.nullable(),
  paused: z.boolean(),
  paused_at: Timestamp.nullable(),
  /** Seconds until the batch finishes at its current pace; null before any job finished and once finished. */
  eta_seconds: z.number().gt(0).nullable(),
  /** Charges so far plus, per unfinished job, the mean charge of finished jobs (or its estimate while none finished). */
  projected_cost_usd: money,
  webhook_url: z.string().nullable(),
});

/** POST /simulations/batch?dry_run=true when every admission check passes. */
export const DryRunSchema = z.looseObject({
  dry_run: z.literal(true),
  total_jobs: count,
  estimated_cost_usd: money,
  job_estimates_usd: z.array(money),
  /** What would remain of the monthly simulation quota after this batch; -1 when unlimited. */
  simulations_remaining: z.number().int().min(-1),
  /** What would remain of the monthly cost limit after this batch (and what is reserved); -1 when unlimited. */
  cost_remaining_usd: z.number().min(-1),
});

/** Server-Sent Event `job` of a batch stream. */
export const BatchStreamJobSchema = z.looseObject({
  job_id: JobId,
  status: JobStatus,
  progress_percent: percent,
  cost_usd: money,
  error_message: z.string().nullable(),
});

export const WebhookSecretSchema = z.looseObject({ secret: z.string().regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/) });

export const WebhookDeliverySchema = z.looseObject({
  webhook_id: z.string(),
  type: z.enum(["batch.completed", "batch.partial", "batch.failed", "batch.cancelled"]),
  attempt: z.number().int().min(1),
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
  delivered: z.boolean(),
  created_at: Timestamp,
});
export const WebhookDeliveryListSchema = z.looseObject({ deliveries: z.array(WebhookDeliverySchema) });

/** The body POSTed to a batch's webhook_url when it ends. */
export const WebhookEventSchema = z.looseObject({
  type: z.enum(["batch.completed", "batch.partial", "batch.failed", "batch.cancelled"]),
  batch: z.lazy(() => BatchSchema),
  created_at: Timestamp,
});

export const BatchWithJobsSchema = z.looseObject({ batch: BatchSchema, jobs: z.array(JobSchema) });

const page = { total: count, page: z.number().int().min(1), page_size: z.number().int().min(1).max(100) };
export const JobListSchema = z.looseObject({ jobs: z.array(JobSchema), ...page });
export const BatchListSchema = z.looseObject({ batches: z.array(BatchSchema), ...page });

export const JobStatsSchema = z.looseObject({
  total_jobs: count,
  pending_jobs: count,
  running_jobs: count,
  completed_jobs: count,
  failed_jobs: count,
  cancelled_jobs: count,
  total_cost_usd: money,
  total_tokens: count,
  avg_duration_seconds: z.number().min(0).nullable(),
});

export const BatchStatsSchema = z.looseObject({
  total_batches: count,
  pending_batches: count,
  running_batches: count,
  completed_batches: count,
  partial_batches: count,
  failed_batches: count,
  cancelled_batches: count,
  total_jobs: count,
  total_cost_usd: money,
  total_tokens: count,
  avg_jobs_per_batch: z.number().min(0),
  avg_duration_seconds: z.number().min(0).nullable(),
});

export const TemplateSchema = z.looseObject({
  template_id: z.string(),
  name: z.string(),
  description: z.string(),
  category: z.string(),
  tier: TemplateTier,
  mechanisms: z.array(z.string()),
  default_entity_count: z.number().int().min(1).max(20),
  default_timepoint_count: z.number().int().min(1).max(20),
  default_temporal_mode: TemporalMode,
  estimated_cost_usd: money,
  estimated_duration_seconds: z.number().min(0),
});

export const TemplateListSchema = z.looseObject({
  templates: z.array(TemplateSchema),
  total: count,
  categories: z.array(z.string()),
});

/** What the run produced; the contract fixes the keys, not the inner shape of entities and the like. */
export const SimulationResultSchema = z.looseObject({
  job: JobSchema,
  entities: z.array(z.unknown()),
  timepoints: z.array(z.unknown()),
  relationships: z.array(z.unknown()),
  summary: z.string().nullable(),
  narrative_exports: z.partialRecord(ExportFormat, z.string()),
  convergence_score: z.number().nullable(),
  robustness_grade: z.string().nullable(),
});

/** One line of GET /simulations/batch/{id}/results (application/x-ndjson), in job_ids order. */
export const BatchResultLineSchema = z
  .looseObject({
    index: count,
    job_id: JobId,
    status: JobStatus,
    template_id: z.string().nullable(),
    temporal_mode: TemporalMode,
    cost_usd: money,
    tokens_used: count,
    result: SimulationResultSchema.omit({ job: true })
      .nullable()
      .meta({ description: "What GET /simulations/{job_id}/result returns, without its job field, for a COMPLETED job; else null" }),
    error: z.looseObject({ message: z.string() }).nullable().meta({ description: "For a FAILED job; else null" }),
  })
  .meta({ description: "One line of the NDJSON body of GET /simulations/batch/{batch_id}/results (one JSON object per line, in job_ids order)" });

const stat = z.number().nullable();
const stance = z.number().nullable();

/** GET /simulations/batch/{id}/report (format=json). */
export const BatchReportSchema = z
  .looseObject({
    batch_id: BatchId,
    status: BatchStatus,
    jobs: z.looseObject({ total: count, completed: count, failed: count, cancelled: count, pending: count, running: count }),
    cost_usd: z
      .looseObject({ total: money, mean: money.nullable(), p50: money.nullable(), p90: money.nullable(), max: money.nullable() })
      .meta({ description: "total = the batch's actual_cost_usd; the others over finished jobs (null while none has finished)" }),
    tokens_used: count.meta({ description: "Tokens of the finished jobs (the batch's tokens_used)" }),
    duration_seconds: z.looseObject({ mean: stat, p50: stat, p90: stat, max: stat }).meta({ description: "Over completed jobs; null while none" }),
    convergence_score: z.looseObject({ mean: stat, min: stat, max: stat }).meta({ description: "Over completed jobs whose result has one; null while none" }),
    robustness_grades: z.record(z.string(), count).meta({ description: "Completed jobs per robustness grade (grades no job has are absent)" }),
    templates: z.record(z.string(), count).meta({ description: "The batch's jobs per template id (description-only jobs are not listed)" }),
    entities: z
      .array(
        z.looseObject({
          template_id: z.string(),
          name: z.string(),
          runs: z.number().int().min(1),
          final_stance: z.looseObject({ mean: stance, min: stance, max: stance }),
        }),
      )
      .meta({ description: "Each entity name of a template over that template's completed runs (final_state.stance), by template then cast order" }),
  })
  .meta({
    description: "Statistics over finished jobs (cost, tokens) or completed jobs (duration, convergence, grades, entities); null where no job qualifies",
  });

export const UsageSchema = z.looseObject({
  user_id: z.string(),
  tier: UserTier,
  period: Period,
  days_remaining: count,
  // Used counts are not bounded below: operator credits may take them under zero.
  api_calls_used: z.number().int(),
  simulations_used: z.number().int(),
  cost_used_usd: z.number(),
  tokens_used: z.number().int(),
  api_calls_limit: limitInt,
  simulations_limit: limitInt,
  cost_limit_usd: limitUsd,
  max_batch_size: z.number().int().min(1),
  api_calls_remaining: limitInt,
  simulations_remaining: limitInt,
  cost_remaining_usd: limitUsd,
  is_quota_exceeded: z.boolean(),
  quota_exceeded_reason: z.enum(["API call quota exceeded", "Simulation quota exceeded", "Cost quota exceeded"]).nullable(),
});

export const UsageHistoryPeriodSchema = z.looseObject({
  period: Period,
  api_calls: z.number().int(),
  simulations_run: z.number().int(),
  simulations_completed: count,
  simulations_failed: count,
  cost_usd: z.number(),
  tokens_used: z.number().int(),
});

export const UsageHistorySchema = z.looseObject({ current: UsageSchema, history: z.array(UsageHistoryPeriodSchema) });

/** The codes are listed once, with their statuses, in packages/errors. */
export { ERROR_CODES };

/** Top-level fields each limit error must carry (contract: Error body). */
const LIMIT_FIELDS: Partial<Record<ErrorCode, readonly string[]>> = {
  BatchTooLarge: ["tier", "max_batch_size"],
  BudgetTooLow: ["estimated_cost_usd"],
  QuotaExceeded: ["api_calls_used", "api_calls_limit"],
  SimulationQuotaExceeded: ["simulations_used", "simulations_limit"],
  CostQuotaExceeded: ["cost_used_usd", "cost_limit_usd"],
  ConcurrencyLimitExceeded: ["active_jobs", "concurrency_limit"],
  RateLimitExceeded: ["tier", "limit"],
};

export const FieldIssueSchema = z.looseObject({ path: z.string(), message: z.string() });

export const ErrorBodySchema = z
  .looseObject({
    error: z.enum(ERROR_CODES),
    message: z.string().min(1),
    detail: z.union([z.array(z.unknown()), jsonObject]).nullable(),
    request_id: z.string().min(1),
    tier: UserTier.optional(),
    max_batch_size: z.number().int().optional(),
    estimated_cost_usd: z.number().optional(),
    api_calls_used: z.number().int().optional(),
    api_calls_limit: z.number().int().optional(),
    simulations_used: z.number().int().optional(),
    simulations_limit: z.number().int().optional(),
    cost_used_usd: z.number().optional(),
    cost_limit_usd: z.number().optional(),
    active_jobs: z.number().int().optional(),
    concurrency_limit: z.number().int().optional(),
    limit: z.number().int().optional(),
  })
  // Code-specific rules JSON Schema cannot say compactly; documented in the description instead.
  .superRefine((body, ctx) => {
    if (body.error === "ValidationError" && !z.array(FieldIssueSchema).safeParse(body.detail).success) {
      ctx.addIssue({ code: "custom", path: ["detail"], message: "ValidationError detail must be a list of {path, message}" });
    }
    for (const field of LIMIT_FIELDS[body.error] ?? []) {
      if ((body as Record<string, unknown>)[field] === undefined) {
        ctx.addIssue({ code: "custom", path: [field], message: `${body.error} must carry ${field}` });
      }
    }
  })
  .meta({
    description:
      "Every error. ValidationError: detail is a list of {path, message}. Limit errors add top-level fields: " +
      Object.entries(LIMIT_FIELDS)
        .map(([code, f]) => `${code} (${f.join(", ")})`)
        .join("; ") +
      ".",
  });

export const AdminUserSchema = z.looseObject({ user_id: z.string(), tier: UserTier, created_at: Timestamp });

export const ApiKeyCreatedSchema = z.looseObject({
  key_id: z.string().min(1),
  api_key: z.string().regex(/^tp_[0-9a-f]{32}$/, "must be tp_ + 32 lowercase hex"),
  user_id: z.string(),
  tier: UserTier,
  created_at: Timestamp,
});

export const UsageAdjustmentResponseSchema = z.looseObject({
  adjustment_id: z.string().min(1),
  user_id: z.string(),
  period: Period,
  api_calls: z.number().int(),
  simulations: z.number().int(),
  cost_usd: z.number(),
  tokens: z.number().int(),
  reason: z.string().min(1),
  created_at: Timestamp,
});

/** The contract only names these routes; their bodies are the service's own, kept minimal here. */
export const ServiceInfoSchema = z.looseObject({ service: z.string() });
export const HealthSchema = z.looseObject({ status: z.literal("ok") });
export const ReadySchema = z.looseObject({
  status: z.literal("ready"),
  checks: z.looseObject({ postgres: z.literal("ok"), redis: z.literal("ok") }),
});
export const OperationsSnapshotSchema = jsonObject.meta({ description: "Operator snapshot: jobs by status, queue counts, workers, event backlog." });

/** Every response schema under its OpenAPI component name. */
export const RESPONSE_SCHEMAS = {
  Job: JobSchema,
  BatchProgress: BatchProgressSchema,
  BatchCost: BatchCostSchema,
  Batch: BatchSchema,
  BatchWithJobs: BatchWithJobsSchema,
  JobList: JobListSchema,
  BatchList: BatchListSchema,
  JobStats: JobStatsSchema,
  BatchStats: BatchStatsSchema,
  Template: TemplateSchema,
  TemplateList: TemplateListSchema,
  SimulationResult: SimulationResultSchema,
  BatchResultLine: BatchResultLineSchema,
  DryRun: DryRunSchema,
  BatchStreamJob: BatchStreamJobSchema,
  WebhookSecret: WebhookSecretSchema,
  WebhookDelivery: WebhookDeliverySchema,
  WebhookDeliveryList: WebhookDeliveryListSchema,
  WebhookEvent: WebhookEventSchema,
  BatchReport: BatchReportSchema,
  Usage: UsageSchema,
  UsageHistoryPeriod: UsageHistoryPeriodSchema,
  UsageHistory: UsageHistorySchema,
  FieldIssue: FieldIssueSchema,
  ErrorBody: ErrorBodySchema,
  AdminUser: AdminUserSchema,
  ApiKeyCreated: ApiKeyCreatedSchema,
  UsageAdjustment: UsageAdjustmentResponseSchema,
  ServiceInfo: ServiceInfoSchema,
  Health: HealthSchema,
  Ready: ReadySchema,
  OperationsSnapshot: OperationsSnapshotSchema,
} as const;
