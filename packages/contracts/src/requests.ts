import { z } from "zod";

const TEMPORAL_MODES = ["FORWARD", "PORTAL", "BRANCHING", "DIRECTORIAL", "CYCLICAL"] as const;
const EXPORT_FORMATS = ["json", "markdown", "pdf"] as const;

/** `null` means "use the default": optional fields accept it. */
const opt = <T extends z.ZodType>(schema: T) => schema.nullish();

/** Enum words are case-insensitive. */
const upperEnum = <T extends readonly [string, ...string[]]>(values: T, params?: Parameters<typeof z.string>[0]) =>
  z
    .string(params)
    .transform((s) => s.toUpperCase())
    .pipe(z.enum(values));
const lowerEnum = <T extends readonly [string, ...string[]]>(values: T, params?: Parameters<typeof z.string>[0]) =>
  z
    .string(params)
    .transform((s) => s.toLowerCase())
    .pipe(z.enum(values));

export const MAX_METADATA_BYTES = 16 * 1024;
const metadata = z
  .record(z.string(), z.unknown())
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_METADATA_BYTES, "must be at most 16 KiB serialized");

export const MAX_CONFIG_BYTES = 16 * 1024;

/** `config` keys every template understands: `seed` (int ≥ 0) makes a run reproducible. */
export const COMMON_CONFIG_KEYS: readonly string[] = ["seed"];

/**
 * `config` keys a template defines for itself (spec/templates.md), by catalog id.
 * Values are validated by the engine (packages/engine/src/run-config.ts).
 */
export const TEMPLATE_CONFIG_KEYS: Readonly<Record<string, readonly string[]>> = {
  "test/scripted": ["steps", "step_ms", "cost_usd_per_step", "tokens_per_step", "fail_at_step", "estimate_usd"],
};

/** The keys of `config` that mean something for this template id (a catalog id or its short name). */
export function knownConfigKeys(templateId: string | null | undefined): ReadonlySet<string> {
  const key = templateId?.trim() ?? "";
  const own = Object.entries(TEMPLATE_CONFIG_KEYS).find(([id]) => id === key || id.split("/")[1] === key)?.[1] ?? [];
  return new Set([...COMMON_CONFIG_KEYS, ...own]);
}

/** `config` without the keys no template understands: they are ignored, so they are neither stored nor echoed. */
export function dropUnknownConfigKeys(config: Record<string, unknown>, templateId: string | null | undefined): Record<string, unknown> {
  const known = knownConfigKeys(templateId);
  return Object.fromEntries(Object.entries(config).filter(([k]) => known.has(k)));
}

/** Capped as given, unknown keys included: the cap bounds what a client may send. */
const runConfig = z
  .record(z.string(), z.unknown())
  .refine((c) => Buffer.byteLength(JSON.stringify(c)) <= MAX_CONFIG_BYTES, "must be at most 16 KiB serialized");

export const SimulationRequestSchema = z
  .object({
    template_id: opt(z.string().max(200)),
    description: opt(z.string().max(2000)),
    entity_count: opt(z.number().int().min(1).max(20)),
    timepoint_count: opt(z.number().int().min(1).max(20)),
    temporal_mode: opt(upperEnum(TEMPORAL_MODES)),
    config: opt(runConfig),
    generate_summaries: opt(z.boolean()),
    export_formats: opt(z.array(lowerEnum(EXPORT_FORMATS)).max(3)),
    metadata: opt(metadata),
  })
  .superRefine((req, ctx) => {
    if (!req.template_id?.trim() && !req.description?.trim()) {
      ctx.addIssue({ code: "custom", path: ["template_id"], message: "template_id or description is required" });
    }
  })
  .transform((req) => (req.config ? { ...req, config: dropUnknownConfigKeys(req.config, req.template_id) } : req));
export type SimulationRequest = z.infer<typeof SimulationRequestSchema>;

const PRIORITY_WORDS: Record<string, number> = { low: 25, normal: 50, high: 75 };
const PRIORITY_RULE = "must be an integer 0..100 or one of low, normal, high";
// One message for every way a priority can be wrong (50.5, 101, "urgent", "75", true):
// a union's own message would only say that no branch matched.
const priority = z.union(
  [
    z.number().int(PRIORITY_RULE).min(0, PRIORITY_RULE).max(100, PRIORITY_RULE),
    z
      .string()
      .transform((s) => s.toLowerCase())
      .refine((s) => Object.hasOwn(PRIORITY_WORDS, s))
      .transform((s) => PRIORITY_WORDS[s]!),
  ],
  { error: PRIORITY_RULE },
);

/** The most simulations one batch request may hold (a tier may allow fewer: BatchTooLarge). */
export const MAX_BATCH_SIMULATIONS = 100;

export const CreateBatchRequestSchema = z.object({
  simulations: z
    .array(z.unknown())
    .min(1, "must hold at least 1 simulation")
    .max(MAX_BATCH_SIMULATIONS, `must hold at most ${MAX_BATCH_SIMULATIONS} simulations`),
  parallel_jobs: opt(z.number().int().min(1).max(100)),
  fail_fast: opt(z.boolean()),
  // Money is kept in whole micro-dollars: a smaller cap would be stored as 0.
  budget_cap_usd: opt(z.number().gte(0.000001, "must be at least 0.000001 (one micro-dollar)").max(1_000_000)),
  priority: opt(priority),
  metadata: opt(metadata),
  /**
   * Absolute URL the batch's end is POSTed to (contract: Webhooks). https only, and no
   * private, loopback or link-local target, unless the deployment allows private
   * networks: the API checks that (it depends on configuration), not this schema.
   */
  webhook_url: opt(z.string().min(1).max(2000, "must be at most 2000 characters")),
});
export type CreateBatchRequest = z.infer<typeof CreateBatchRequestSchema>;

export const CancelRequestSchema = z.object({
  reason: opt(z.string().max(500)),
});

export const CancelBatchRequestSchema = z.object({
  reason: opt(z.string().max(500)),
  cancel_running: opt(z.boolean()),
});

const emptyAsUndefined = (v: unknown) => (v === "" ? undefined : v);
/** A query parameter given twice (`?a=1&a=2`) arrives as a list: say so, else `message`. */
const onceOr = (message: string) => ({ error: (issue: { input?: unknown }) => (Array.isArray(issue.input) ? "must be given once" : message) });
const onceOnly = onceOr("must be a string");
const queryInt = (min: number, max: number) => {
  const rule = `must be an integer ${min}..${max}`;
  // The regex already makes it an integer; zod's int() would add a safe-integer bound whose message is not the rule.
  return z.preprocess(emptyAsUndefined, z.string(onceOnly).regex(/^\d+$/, rule).transform(Number).pipe(z.number().min(min, rule).max(max, rule)).optional());
};

export const JOB_STATUSES = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"] as const;
export const BATCH_STATUSES = ["PENDING", "RUNNING", "COMPLETED", "PARTIAL", "FAILED", "CANCELLED"] as const;

export const pageQuery = {
  page: queryInt(1, 1_000_000),
  page_size: queryInt(1, 100),
};
export const statusQuery = <T extends readonly [string, ...string[]]>(values: T) => z.preprocess(emptyAsUndefined, upperEnum(values, onceOnly).optional());

/** GET /simulations/templates: `category` (case-insensitive, surrounding blanks ignored). */
export const ListTemplatesQuerySchema = z.object({
  category: z.preprocess(emptyAsUndefined, z.string(onceOnly).trim().toLowerCase().optional()),
});

export const ListJobsQuerySchema = z
  .object({
    status: statusQuery(JOB_STATUSES),
    status_filter: statusQuery(JOB_STATUSES),
    ...pageQuery,
  })
  // An alias naming another status than `status` would silently drop one filter.
  .refine((q) => q.status == null || q.status_filter == null || q.status === q.status_filter, {
    path: ["status_filter"],
    message: "is an alias of status and names another status: give one of them",
  });
/** `Idempotency-Key` header: 1-255 characters of [A-Za-z0-9._:-]. */
export const IdempotencyKeySchema = z
  .string()
  .min(1, "must be 1-255 characters")
  .max(255, "must be 1-255 characters")
  .regex(/^[A-Za-z0-9._:-]+$/, "may hold only letters, digits and . _ : -");

/** POST /simulations/batch query: `dry_run` (true/false, case-insensitive). */
export const CreateBatchQuerySchema = z.object({
  dry_run: z.preprocess(
    (v) => (v === "" ? undefined : typeof v === "string" ? v.toLowerCase() : v),
    z
      .enum(["true", "false"], onceOr("must be true or false"))
      .transform((v) => v === "true")
      .optional(),
  ),
});

export const ListBatchesQuerySchema = z.object({ status: statusQuery(BATCH_STATUSES), ...pageQuery });
export const UsageHistoryQuerySchema = z.object({ periods: queryInt(1, 24) });

export const REPORT_FORMATS = ["json", "markdown", "csv"] as const;
/** GET /simulations/batch/{id}/report: `format` json (default), markdown or csv, case-insensitive. */
export const BatchReportQuerySchema = z.object({
  format: z
    .preprocess(emptyAsUndefined, lowerEnum(REPORT_FORMATS, onceOnly).optional())
    .meta({ description: "json (default), markdown or csv; case-insensitive" }),
});
