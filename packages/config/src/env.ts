import { z } from "zod";

const bool = z.enum(["1", "0", "true", "false", "yes", "no", "on", "off"]).transform((v) => ["1", "true", "yes", "on"].includes(v));
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^-?\d+$/, "must be an integer")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const MIN_ADMIN_TOKEN_LENGTH = 32;

export const TIERS = ["free", "basic", "pro", "enterprise"] as const;
export type Tier = (typeof TIERS)[number];

/** Env keys every role reads. */
export const CommonEnvSchema = z.object({
  DATABASE_URL: z.string().url().default("postgresql://postgres@127.0.0.1:5432/simbatch"),
  /**
   * Postgres for migrations (`npm run db:migrate`, `npm start`), when DATABASE_URL goes
   * through a pooler in transaction mode: `prisma migrate` holds a session-level
   * advisory lock, which only a direct connection keeps. Unset → DATABASE_URL.
   */
  DIRECT_DATABASE_URL: z.string().url().optional(),
  /**
   * The hot statements (claims, ends, a dispatch pass's reads, a reconciler's batch
   * evaluation) run as named prepared statements, planned once per connection. Off
   * behind a pooler in transaction mode that cannot keep them (PgBouncer before 1.21,
   * or later without `max_prepared_statements`): every statement is then parsed and
   * planned per call.
   */
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  /**
   * Postgres ends a role's session left idle inside one of its transactions for longer
   * than this, releasing its locks (a process stopped mid-transaction would otherwise
   * hold the batch and user rows every job end needs). Set per transaction, so it
   * holds behind a pooler and touches no other client. 0: no limit.
   */
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: int(0, 86_400_000).default(10_000),
  /** One Redis server; with REDIS_CLUSTER_NODES, only its credentials and scheme (`rediss:` = TLS) are used. */
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  /** Seed nodes of a Redis Cluster, `host:port,host:port`; set → every Redis connection is a Cluster client. */
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((value, ctx) => {
      const nodes = parseRedisNodes(value);
      if (nodes) return nodes;
      ctx.addIssue({ code: "custom", message: "must be a comma-separated list of host:port" });
      return z.NEVER;
    })
    .optional(),
  /**
   * Prefix of every Redis key and BullMQ queue; tests give each file its own. It may
   * hold one hash tag (`{simbatch}`); on a Cluster it always does (see parseEnv).
   */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]*(\{[A-Za-z0-9:_-]+\})?[A-Za-z0-9:_-]*$/, "must be letters, digits, ':', '_', '-', with at most one {hash tag}")
    .min(1)
    .default("simbatch"),
  LOG_LEVEL: z.enum(["error", "warn", "info", "http", "verbose", "debug", "silly"]).default("info"),
  SIMBATCH_TEST_TEMPLATES: bool.default(false),
  /** Milliseconds a role may take to drain on SIGTERM before it exits anyway. */
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** First retry delay of a failed webhook delivery; each later one doubles (8 attempts in all). */
  WEBHOOK_RETRY_BASE_MS: int(1, 3_600_000).default(5_000),
  /**
   * Allows webhook URLs with http:// and private, loopback or link-local targets
   * (tests and local setups); off, they are refused at create (422) and at delivery.
   */
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: bool.default(false),
});

/**
 * Liveness file of the roles without an HTTP port (worker, reconciler): when
 * set, the process rewrites it every few seconds from its event loop, and
 * `scripts/healthcheck.mjs` (the image's HEALTHCHECK, Kubernetes exec probes)
 * calls the process alive while the file is fresh.
 */
const HealthFileEnv = { HEALTH_FILE: z.string().optional() };

export const ApiEnvSchema = CommonEnvSchema.extend({
  PORT: int(0, 65535).default(8080),
  /**
   * Bearer token of the admin API; unset → the admin routes answer 404. At least
   * MIN_ADMIN_TOKEN_LENGTH characters: a short token stops the API at boot.
   */
  ADMIN_TOKEN: z.string().min(MIN_ADMIN_TOKEN_LENGTH, `must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`).optional(),
  /** Failed admin authentications per client IP per window before 429 (ADMIN_AUTH_WINDOW_MS). */
  ADMIN_AUTH_MAX_FAILURES: int(1, 1_000_000).default(10),
  ADMIN_AUTH_WINDOW_MS: int(1_000, 86_400_000).default(15 * 60_000),
  /** Time a client has to send the request headers (slowloris). */
  HTTP_HEADERS_TIMEOUT_MS: int(1_000, 600_000).default(10_000),
  /** Time a client has to send the whole request, headers and body. */
  HTTP_REQUEST_TIMEOUT_MS: int(1_000, 3_600_000).default(30_000),
  /** Idle time before a keep-alive connection is closed. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(100, 600_000).default(5_000),
  MAX_BODY_BYTES: int(1024).default(2 * 1024 * 1024),
  /** false switches the per-tier rate limit off; API-call quotas stay on. */
  RATE_LIMIT_ENABLED: bool.default(true),
  /** How often each API process writes its pending API-call counts to Postgres. */
  USAGE_FLUSH_INTERVAL_MS: int(100, 600_000).default(5_000),
  /** Interval of the `: keep-alive` comment on live-progress streams. */
  SSE_KEEPALIVE_MS: int(100, 600_000).default(15_000),
  /** Open live-progress streams a user may hold across all API processes. */
  SSE_MAX_STREAMS_PER_USER: int(1, 10_000).default(20),
});

/** ApiEnvSchema plus the rules between keys; what the API and `npm start` boot with. */
export const ApiEnvSchemaChecked = ApiEnvSchema.superRefine((env, ctx) => {
  if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    ctx.addIssue({ code: "custom", path: ["HTTP_HEADERS_TIMEOUT_MS"], message: "must not exceed HTTP_REQUEST_TIMEOUT_MS" });
  }
});

export const WorkerEnvSchema = CommonEnvSchema.extend({
  ...HealthFileEnv,
  WORKER_CONCURRENCY: int(1, 1000).default(4),
  /** Pause per engine step standing in for model latency. */
  SIM_STEP_MS: int(0, 600_000).default(300),
  ENGINE: z.enum(["builtin", "openai"]).default("builtin"),
  OPENAI_BASE_URL: z.string().url().default("https://api.openai.com/v1"),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_MODEL: z.string().default("gpt-4o-mini"),
  /** Model the built-in engine's text is priced at (see packages/engine README). */
  ENGINE_MODEL: z.string().optional(),
  /** Price overrides, JSON `{"model": usd_per_million_tokens}`. */
  MODEL_PRICES_JSON: z
    .string()
    .transform((s, ctx) => {
      try {
        return z.record(z.string(), z.number().positive()).parse(JSON.parse(s));
      } catch {
        ctx.addIssue({ code: "custom", message: "must be a JSON object of model name to USD per million tokens" });
        return z.NEVER;
      }
    })
    .optional(),
  /** BullMQ lock duration: a crashed worker's job is retried after about this long. */
  JOB_LOCK_MS: int(1000).default(30_000),
  /**
   * Attempts a job may use (each claim is one, counted in Postgres); a claim past
   * the cap does not run: the job ends FAILED, charged what its attempts spent.
   */
  MAX_JOB_ATTEMPTS: int(1, 100).default(5),
});

export const WorkerEnvSchemaChecked = WorkerEnvSchema.superRefine((env, ctx) => {
  if (env.ENGINE === "openai" && !env.OPENAI_API_KEY) {
    ctx.addIssue({ code: "custom", path: ["OPENAI_API_KEY"], message: "is required when ENGINE=openai" });
  }
});

export const ReconcilerEnvSchema = CommonEnvSchema.extend({
  ...HealthFileEnv,
  SWEEP_INTERVAL_MS: int(100).default(15_000),
  /**
   * Repair timeout of the sweep: a finished attempt whose outcome is recorded but
   * whose event has not been applied this long is applied from the outcome, and a
   * RUNNING job BullMQ has not held for this long is re-queued.
   */
  REPAIR_AFTER_MS: int(100, 3_600_000).default(60_000),
  /** Events another reconciler read but did not acknowledge for this long are taken over (XAUTOCLAIM). */
  EVENT_CLAIM_IDLE_MS: int(100, 3_600_000).default(30_000),
  /** A webhook receiver must answer within this (else the attempt failed and is retried). */
  WEBHOOK_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** Webhook deliveries in flight per reconciler. */
  WEBHOOK_CONCURRENCY: int(1, 1000).default(10),
});

export type CommonEnv = z.infer<typeof CommonEnvSchema>;
export type ApiEnv = z.infer<typeof ApiEnvSchema>;
export type WorkerEnv = z.infer<typeof WorkerEnvSchema>;
export type ReconcilerEnv = z.infer<typeof ReconcilerEnvSchema>;

export interface RedisNode {
  host: string;
  port: number;
}

/** `host:port,host:port` (IPv6 hosts in brackets: `[::1]:7000`); null when any entry is not one. */
export function parseRedisNodes(value: string): RedisNode[] | null {
  const nodes: RedisNode[] = [];
  for (const entry of value.split(",").map((e) => e.trim())) {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) return null;
    nodes.push({ host: m[1]!.replace(/^\[(.*)\]$/, "$1"), port });
  }
  return nodes.length > 0 ? nodes : null;
}

/**
 * The key prefix the roles use. On a Redis Cluster every key of a deployment
 * must hash to one slot: BullMQ's scripts, our step-boundary and API-call
 * scripts, MULTI blocks and pipelines each touch several keys at once. A prefix
 * with a hash tag already (`{simbatch}`, `app:{simbatch}`) is kept; otherwise on
 * a Cluster the whole prefix becomes the tag (`simbatch` → `{simbatch}`). On one
 * Redis server the prefix is used as given, so existing keys keep their names.
 */
export function effectiveRedisPrefix(prefix: string, cluster: boolean): string {
  return !cluster || /\{[^}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
}

export class ConfigError extends Error {
  constructor(
    readonly keys: string[],
    message: string,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Parses env once at boot. Empty strings count as unset. Errors name the keys
 * and the rule, never the values (they may be secrets). REDIS_PREFIX comes back
 * as the roles use it (effectiveRedisPrefix).
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(cleaned);
  if (parsed.success) {
    // Every role's REDIS_PREFIX is the one its keys use, so nothing downstream
    // (a new queue, a new key family) can pick the untagged form on a Cluster.
    const data = parsed.data as Record<string, unknown>;
    if (typeof data.REDIS_PREFIX === "string") data.REDIS_PREFIX = effectiveRedisPrefix(data.REDIS_PREFIX, Array.isArray(data.REDIS_CLUSTER_NODES));
    return parsed.data;
  }
  const keys = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? "?")))];
  const detail = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
  throw new ConfigError(keys, `invalid environment: ${detail}`);
}

/** Boot helper: parse or print the bad keys and exit 1 at once. */
export function loadEnvOrExit<S extends z.ZodType>(schema: S, role: string): z.infer<S> {
  try {
    return parseEnv(schema, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${JSON.stringify({ level: "error", message: `${role}: ${err.message}`, keys: err.keys })}\n`);
    process.exit(1);
  }
}
