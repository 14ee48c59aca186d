import { z } from "zod";
import { CreateKeySchema, CreateUserSchema, UpdateUserSchema, UsageAdjustmentSchema } from "./admin-requests.ts";
import {
  BatchReportQuerySchema,
  CancelBatchRequestSchema,
  CancelRequestSchema,
  CreateBatchQuerySchema,
  CreateBatchRequestSchema,
  ListBatchesQuerySchema,
  ListJobsQuerySchema,
  ListTemplatesQuerySchema,
  SimulationRequestSchema,
  UsageHistoryQuerySchema,
} from "./requests.ts";
import { RESPONSE_SCHEMAS } from "./responses.ts";

/**
 * The OpenAPI 3.1 document of every route the API serves, generated from the zod
 * schemas (requests as clients send them, io "input"; responses as the contract
 * defines them), so the document cannot drift from the validators.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** `admin-browser`: the dashboards, which take the admin token as HTTP Basic password too. */
type Auth = "none" | "key" | "usage" | "admin" | "admin-browser";
type ResponseName = keyof typeof RESPONSE_SCHEMAS;

interface Route {
  method: "get" | "post" | "patch" | "delete";
  /** OpenAPI form: `{param}`. */
  path: string;
  summary: string;
  tag: string;
  auth: Auth;
  body?: string;
  query?: z.ZodObject;
  /** `content`: per media type, a kind (object, string, binary) or a response schema. */
  ok: { status: number; schema?: ResponseName; content?: Record<string, string | { schema: ResponseName }> };
  /** Route-specific error codes by status, added to those the auth chain can give. */
  errors?: Record<number, string[]>;
  /** Request headers the route reads (beyond auth). */
  headers?: JsonObject[];
  /** A second success answer (the dry run's 200). */
  alsoOk?: { status: number; schema: ResponseName; description: string };
}

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const idempotencyKey: JsonObject = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "1-255 characters of [A-Za-z0-9._:-], scoped to the user and the route, kept 24 h: the same key and body replay the first response " +
    "(header Idempotent-Replayed: true); another body is 422 IdempotencyKeyReused; while the first is admitted, 409 IdempotencyKeyInProgress",
  schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[A-Za-z0-9._:-]+$" },
};
const lastEventId: JsonObject = {
  name: "Last-Event-ID",
  in: "header",
  required: false,
  description: "Reconnecting: the stream starts with a fresh snapshot (never a replay), its ids continuing after this one",
  schema: { type: "string" },
};
const sse =
  "text/event-stream: a snapshot event first, then changes (at most one per 250 ms), the terminal state, then the stream closes; `: keep-alive` every 15 s";
const owned = { 403: ["Forbidden"], 404: ["NotFound"] };

function routes(): Route[] {
  return [
    { method: "get", path: "/", summary: "Service info", tag: "service", auth: "none", ok: { status: 200, schema: "ServiceInfo" } },
    { method: "get", path: "/health", summary: "The process is up", tag: "service", auth: "none", ok: { status: 200, schema: "Health" } },
    {
      method: "get",
      path: "/ready",
      summary: "Postgres and Redis answer (503 naming what is down otherwise)",
      tag: "service",
      auth: "none",
      ok: { status: 200, schema: "Ready" },
      errors: { 503: ["ServiceUnavailable"] },
    },
    {
      method: "get",
      path: "/simulations/templates",
      summary: "List templates",
      tag: "templates",
      auth: "key",
      query: ListTemplatesQuerySchema,
      ok: { status: 200, schema: "TemplateList" },
      errors: { 422: ["ValidationError"] },
    },
    {
      method: "get",
      path: "/simulations/templates/{template_id}",
      summary: "One template (the id contains `/`, e.g. showcase/board_meeting)",
      tag: "templates",
      auth: "key",
      ok: { status: 200, schema: "Template" },
      errors: { 404: ["NotFound"] },
    },
    {
      method: "post",
      path: "/simulations/batch",
      summary: "Submit a batch",
      tag: "batches",
      auth: "key",
      body: "CreateBatchRequest",
      query: CreateBatchQuerySchema,
      headers: [idempotencyKey],
      ok: { status: 202, schema: "Batch" },
      alsoOk: { status: 200, schema: "DryRun", description: "dry_run=true: every admission check passed; nothing was written" },
      errors: {
        400: ["BatchTooLarge", "BudgetTooLow"],
        409: ["IdempotencyKeyInProgress"],
        422: ["IdempotencyKeyReused"],
        429: ["SimulationQuotaExceeded", "CostQuotaExceeded"],
      },
    },
    {
      method: "get",
      path: "/simulations/batch",
      summary: "List the caller's batches, newest first",
      tag: "batches",
      auth: "key",
      query: ListBatchesQuerySchema,
      ok: { status: 200, schema: "BatchList" },
    },
    { method: "get", path: "/simulations/batch/stats", summary: "Batch statistics", tag: "batches", auth: "key", ok: { status: 200, schema: "BatchStats" } },
    {
      method: "get",
      path: "/simulations/batch/usage",
      summary: "Usage and quota of the current period",
      tag: "usage",
      auth: "usage",
      ok: { status: 200, schema: "Usage" },
    },
    {
      method: "get",
      path: "/simulations/batch/usage/history",
      summary: "Current usage and past periods",
      tag: "usage",
      auth: "usage",
      query: UsageHistoryQuerySchema,
      ok: { status: 200, schema: "UsageHistory" },
    },
    {
      method: "get",
      path: "/simulations/batch/{batch_id}",
      summary: "One batch",
      tag: "batches",
      auth: "key",
      ok: { status: 200, schema: "Batch" },
      errors: owned,
    },
    {
      method: "get",
      path: "/simulations/batch/{batch_id}/jobs",
      summary: "A batch and its jobs in request order",
      tag: "batches",
      auth: "key",
      ok: { status: 200, schema: "BatchWithJobs" },
      errors: owned,
    },
    {
      method: "get",
      path: "/simulations/batch/{batch_id}/results",
      summary: "Every job's result in one download: NDJSON, one BatchResultLine per job in job_ids order, streamed (allowed at any time)",
      tag: "batches",
      auth: "key",
      ok: { status: 200, content: { "application/x-ndjson": { schema: "BatchResultLine" } } },
      errors: owned,
    },
    {
      method: "get",
      path: "/simulations/batch/{batch_id}/report",
      summary: "Cross-run report: counts, cost and duration statistics, convergence, grades, per-entity final stance (json, markdown or csv)",
      tag: "batches",
      auth: "key",
      query: BatchReportQuerySchema,
      ok: { status: 200, content: { "application/json": { schema: "BatchReport" }, "text/markdown": "string", "text/csv": "string" } },
      errors: owned,
    },
    {
      method: "post",
      path: "/simulations/batch/{batch_id}/cancel",
      summary: "Cancel a PENDING or RUNNING batch",
      tag: "batches",
      auth: "key",
      body: "CancelBatchRequest",
      ok: { status: 200, schema: "Batch" },
      errors: { ...owned, 400: ["InvalidState"] },
    },
    {
      method: "post",
      path: "/simulations/batch/{batch_id}/pause",
      summary: "Pause a PENDING or RUNNING batch: no job of it starts until it is resumed; running jobs finish (pausing a paused batch is a no-op)",
      tag: "batches",
      auth: "key",
      body: "EmptyRequest",
      ok: { status: 200, schema: "Batch" },
      errors: { ...owned, 400: ["InvalidState"] },
    },
    {
      method: "post",
      path: "/simulations/batch/{batch_id}/resume",
      summary: "Resume a paused batch (resuming a batch that is not paused is a no-op)",
      tag: "batches",
      auth: "key",
      body: "EmptyRequest",
      ok: { status: 200, schema: "Batch" },
      errors: { ...owned, 400: ["InvalidState"] },
    },
    {
      method: "get",
      path: "/simulations/batch/{batch_id}/events",
      summary: `Live progress of a batch (Server-Sent Events: \`batch\` events carry the batch object, \`job\` events a BatchStreamJob). ${sse}`,
      tag: "live",
      auth: "key",
      headers: [lastEventId],
      ok: { status: 200, content: { "text/event-stream": "string" } },
      errors: { ...owned, 429: ["RateLimitExceeded"] },
    },
    {
      method: "get",
      path: "/simulations/{job_id}/events",
      summary: `Live progress of one job (Server-Sent Events: \`job\` events carry the job object). ${sse}`,
      tag: "live",
      auth: "key",
      headers: [lastEventId],
      ok: { status: 200, content: { "text/event-stream": "string" } },
      errors: { ...owned, 429: ["RateLimitExceeded"] },
    },
    {
      method: "get",
      path: "/simulations/batch/{batch_id}/webhook-deliveries",
      summary: "The batch's webhook delivery attempts, oldest first",
      tag: "webhooks",
      auth: "key",
      ok: { status: 200, schema: "WebhookDeliveryList" },
      errors: owned,
    },
    {
      method: "get",
      path: "/webhooks/secret",
      summary: "The caller's webhook signing secret (created on first request, stable after)",
      tag: "webhooks",
      auth: "key",
      ok: { status: 200, schema: "WebhookSecret" },
    },
    {
      method: "post",
      path: "/webhooks/secret/rotate",
      summary: "A new signing secret; deliveries carry a signature with the previous one too for 24 h",
      tag: "webhooks",
      auth: "key",
      body: "EmptyRequest",
      ok: { status: 200, schema: "WebhookSecret" },
    },
    {
      method: "post",
      path: "/simulations",
      summary: "Submit one simulation",
      tag: "simulations",
      auth: "key",
      body: "SimulationRequest",
      headers: [idempotencyKey],
      ok: { status: 202, schema: "Job" },
      errors: {
        409: ["IdempotencyKeyInProgress"],
        422: ["IdempotencyKeyReused"],
        429: ["ConcurrencyLimitExceeded", "SimulationQuotaExceeded", "CostQuotaExceeded"],
      },
    },
    {
      method: "get",
      path: "/simulations",
      summary: "List the caller's jobs (batch jobs included), newest first",
      tag: "simulations",
      auth: "key",
      query: ListJobsQuerySchema,
      ok: { status: 200, schema: "JobList" },
    },
    { method: "get", path: "/simulations/stats", summary: "Job statistics", tag: "simulations", auth: "key", ok: { status: 200, schema: "JobStats" } },
    { method: "get", path: "/simulations/{job_id}", summary: "One job", tag: "simulations", auth: "key", ok: { status: 200, schema: "Job" }, errors: owned },
    {
      method: "post",
      path: "/simulations/{job_id}/cancel",
      summary: "Cancel a PENDING or RUNNING job",
      tag: "simulations",
      auth: "key",
      body: "CancelRequest",
      ok: { status: 200, schema: "Job" },
      errors: { ...owned, 400: ["InvalidState"] },
    },
    {
      method: "get",
      path: "/simulations/{job_id}/result",
      summary: "Result of a COMPLETED job",
      tag: "simulations",
      auth: "key",
      ok: { status: 200, schema: "SimulationResult" },
      errors: { ...owned, 400: ["InvalidState"] },
    },
    {
      method: "get",
      path: "/simulations/{job_id}/exports/{format}",
      summary: "Download an export (json, markdown or pdf)",
      tag: "simulations",
      auth: "key",
      ok: { status: 200, content: { "application/json": "object", "text/markdown": "string", "application/pdf": "binary" } },
      errors: owned,
    },
    {
      method: "post",
      path: "/admin/users",
      summary: "Create a user (201) or update its tier (200)",
      tag: "admin",
      auth: "admin",
      body: "CreateUserRequest",
      ok: { status: 201, schema: "AdminUser" },
    },
    {
      method: "patch",
      path: "/admin/users/{user_id}",
      summary: "Change a user's tier",
      tag: "admin",
      auth: "admin",
      body: "UpdateUserRequest",
      ok: { status: 200, schema: "AdminUser" },
      errors: { 404: ["NotFound"] },
    },
    {
      method: "post",
      path: "/admin/users/{user_id}/api-keys",
      summary: "Create an API key (shown once)",
      tag: "admin",
      auth: "admin",
      body: "CreateApiKeyRequest",
      ok: { status: 201, schema: "ApiKeyCreated" },
      errors: { 404: ["NotFound"] },
    },
    {
      method: "delete",
      path: "/admin/api-keys/{key_id}",
      summary: "Revoke an API key",
      tag: "admin",
      auth: "admin",
      ok: { status: 204 },
      errors: { 404: ["NotFound"] },
    },
    {
      method: "get",
      path: "/admin/metrics",
      summary: "Prometheus metrics",
      tag: "admin",
      auth: "admin",
      ok: { status: 200, content: { "text/plain": "string" } },
    },
    {
      method: "get",
      path: "/admin/operations",
      summary: "Operator snapshot of jobs, queue and workers",
      tag: "admin",
      auth: "admin",
      ok: { status: 200, schema: "OperationsSnapshot" },
    },
    {
      method: "post",
      path: "/admin/users/{user_id}/usage-adjustments",
      summary: "Add an operator entry to the usage ledger",
      tag: "admin",
      auth: "admin",
      body: "UsageAdjustmentRequest",
      ok: { status: 201, schema: "UsageAdjustment" },
      errors: { 404: ["NotFound"] },
    },
    {
      method: "get",
      path: "/admin/dashboard",
      summary: "Operators' dashboard page (HTML for a browser; the queue board is at /admin/queues, see docs/dashboard.md)",
      tag: "admin",
      auth: "admin-browser",
      ok: { status: 200, content: { "text/html": "string" } },
    },
    {
      method: "get",
      path: "/admin/dashboard/data",
      summary: "The dashboard's snapshot, which the page polls",
      tag: "admin",
      auth: "admin-browser",
      ok: { status: 200, schema: "DashboardSnapshot" },
    },
  ];
}

/** Errors every route of an auth chain can answer (contract: order of checks). */
function chainErrors(r: Route): Record<number, string[]> {
  const e: Record<number, string[]> = {};
  const add = (status: number, ...codes: string[]) => (e[status] = [...(e[status] ?? []), ...codes]);
  if (r.body) add(413, "PayloadTooLarge");
  if (r.auth === "none") return e;
  if (r.auth === "admin" || r.auth === "admin-browser") add(404, "NotFound");
  add(401, "Unauthorized");
  if (r.auth === "key") add(429, "QuotaExceeded", "RateLimitExceeded");
  if (r.auth === "usage") add(429, "RateLimitExceeded");
  if (r.body || r.query) add(422, "ValidationError");
  add(503, "ServiceUnavailable");
  return e;
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Payload Too Large",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

const requestIdHeader = { "X-Request-Id": { $ref: "#/components/headers/X-Request-Id" } };

function okResponse(r: Route): JsonObject {
  const base = { description: STATUS_TEXT[r.ok.status] ?? "OK", headers: requestIdHeader };
  if (r.ok.schema) return { ...base, content: { "application/json": { schema: ref(r.ok.schema) } } };
  if (!r.ok.content) return base;
  const kinds: Record<string, JsonObject> = {
    object: { type: "object" },
    string: { type: "string" },
    binary: { type: "string", contentMediaType: "application/pdf" },
  };
  return {
    ...base,
    content: Object.fromEntries(
      Object.entries(r.ok.content).map(([type, kind]) => [type, { schema: typeof kind === "string" ? kinds[kind]! : ref(kind.schema) }]),
    ),
  };
}

function errorResponses(r: Route): JsonObject {
  const merged: Record<number, string[]> = chainErrors(r);
  for (const [status, codes] of Object.entries(r.errors ?? {})) merged[Number(status)] = [...(merged[Number(status)] ?? []), ...codes];
  const out: JsonObject = {};
  for (const [status, codes] of Object.entries(merged)) {
    const headers: JsonObject = { ...requestIdHeader };
    if (status === "429" || status === "503") headers["Retry-After"] = { $ref: "#/components/headers/Retry-After" };
    out[status] = { description: [...new Set(codes)].join(", "), headers, content: { "application/json": { schema: ref("ErrorBody") } } };
  }
  out.default = {
    description: "InternalError (a bug; quote the request id)",
    headers: requestIdHeader,
    content: { "application/json": { schema: ref("ErrorBody") } },
  };
  return out;
}

/** Bodies whose every field is optional: the request may be sent without one. */
const OPTIONAL_BODIES = new Set(["CancelRequest", "CancelBatchRequest", "CreateApiKeyRequest", "EmptyRequest"]);

const SECURITY: Record<Auth, Json[]> = {
  none: [],
  key: [{ ApiKey: [] }],
  usage: [{ ApiKey: [] }],
  admin: [{ AdminBearer: [] }],
  "admin-browser": [{ AdminBearer: [] }, { AdminBasic: [] }],
};

function operation(r: Route): JsonObject {
  const params: Json[] = [...r.path.matchAll(/\{([a-z_]+)\}/g)].map((m) => ({ name: m[1]!, in: "path", required: true, schema: { type: "string" } }));
  if (r.query) {
    const q = z.toJSONSchema(r.query, { io: "input", unrepresentable: "any" }) as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      params.push({ name, in: "query", required: q.required?.includes(name) ?? false, schema });
    }
  }
  params.push(...(r.headers ?? []));
  const op: JsonObject = {
    operationId:
      `${r.method}${r.path
        .replace(/[{}]/g, "")
        .split(/[/_-]/)
        .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
        .join("")}` || r.method,
    summary: r.summary,
    tags: [r.tag],
    security: SECURITY[r.auth],
    parameters: params,
    responses: {
      [String(r.ok.status)]: okResponse(r),
      ...(r.alsoOk
        ? {
            [String(r.alsoOk.status)]: {
              description: r.alsoOk.description,
              headers: requestIdHeader,
              content: { "application/json": { schema: ref(r.alsoOk.schema) } },
            },
          }
        : {}),
      ...errorResponses(r),
    },
  };
  if (r.body) op.requestBody = { required: !OPTIONAL_BODIES.has(r.body), content: { "application/json": { schema: ref(r.body) } } };
  return op;
}

/** Component schemas of a set of zod schemas, cross-referenced by name, without per-schema `$schema` noise. */
function componentSchemas(schemas: Record<string, z.ZodType>, io: "input" | "output"): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, { io, unrepresentable: "any", uri: (id) => `#/components/schemas/${id}` });
  const result: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(out.schemas)) {
    const { $schema: _schema, $id: _id, ...rest } = schema as JsonObject;
    result[id] = dropSafeIntegerBounds(rest) as JsonObject;
  }
  return result;
}

/** zod bounds every int by ±2^53−1; that is JSON's limit anyway, so it is noise in the document. */
function dropSafeIntegerBounds(v: Json): Json {
  if (Array.isArray(v)) return v.map(dropSafeIntegerBounds);
  if (!v || typeof v !== "object") return v;
  const safe = (k: string, x: Json) => (k === "maximum" || k === "minimum") && Math.abs(Number(x)) === Number.MAX_SAFE_INTEGER;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k, x]) => !safe(k, x))
      .map(([k, x]) => [k, dropSafeIntegerBounds(x)]),
  );
}

export function buildOpenApiDocument(): JsonObject {
  const requests = componentSchemas(
    {
      SimulationRequest: SimulationRequestSchema,
      CreateBatchRequest: CreateBatchRequestSchema,
      CancelRequest: CancelRequestSchema,
      CancelBatchRequest: CancelBatchRequestSchema,
      EmptyRequest: z.object({}),
      CreateUserRequest: CreateUserSchema,
      UpdateUserRequest: UpdateUserSchema,
      CreateApiKeyRequest: CreateKeySchema,
      UsageAdjustmentRequest: UsageAdjustmentSchema,
    },
    "input",
  );
  // The batch schema takes items as unknown so each is validated (and its 422 path indexed) by the single
  // simulation rules; on the wire each item is exactly a simulation request.
  const batchProps = requests.CreateBatchRequest!.properties as JsonObject;
  batchProps.simulations = { ...(batchProps.simulations as JsonObject), items: ref("SimulationRequest") };

  const paths: Record<string, JsonObject> = {};
  for (const r of routes()) (paths[r.path] ??= {})[r.method] = operation(r);

  return {
    openapi: "3.1.0",
    info: {
      title: "simbatch API",
      version: "0.1.0",
      description:
        "Batch and single simulations. Unknown paths answer 404 NotFound and known paths with another method 405 MethodNotAllowed, " +
        "both before auth; bodies over the size limit answer 413 before auth. Every response carries X-Request-Id.",
    },
    servers: [{ url: "http://localhost:8080" }],
    tags: ["service", "simulations", "batches", "templates", "usage", "admin"].map((name) => ({ name })),
    paths,
    components: {
      schemas: { ...componentSchemas(RESPONSE_SCHEMAS, "output"), ...requests },
      securitySchemes: {
        ApiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "tp_ + 32 lowercase hex" },
        AdminBearer: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN; admin routes answer 404 when it is unset" },
        AdminBasic: { type: "http", scheme: "basic", description: "ADMIN_TOKEN as the password, any user name; the dashboards only" },
      },
      headers: {
        "X-Request-Id": {
          description: "The client's X-Request-Id echoed, else a generated one; equals request_id of an error body",
          schema: { type: "string" },
        },
        "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 0 } },
      },
    },
  };
}

/** JSON with object keys sorted at every level, so regenerating gives byte-identical output. */
export function stableJson(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
          )
        : v;
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}
