export const ERROR_STATUS = {
  ValidationError: 422,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  PayloadTooLarge: 413,
  InvalidState: 400,
  BatchTooLarge: 400,
  BudgetTooLow: 400,
  QuotaExceeded: 429,
  SimulationQuotaExceeded: 429,
  CostQuotaExceeded: 429,
  ConcurrencyLimitExceeded: 429,
  RateLimitExceeded: 429,
  IdempotencyKeyReused: 422,
  IdempotencyKeyInProgress: 409,
  ServiceUnavailable: 503,
  InternalError: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Every error code, in one place (the wire schema in packages/contracts derives its enum from this). */
export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

export interface AppErrorOptions {
  /** Sentence shown to the client. */
  message: string;
  /** What the logs say (the underlying error's text, hosts, ids); never sent to the client. Default: `message`. */
  internal?: string;
  /** The error this one stands for (kept for the logs). */
  cause?: unknown;
  /** `detail` of the error body. */
  detail?: unknown;
  /** Extra top-level fields of the body (limit errors). */
  fields?: Record<string, unknown>;
  /** Seconds for the Retry-After header. */
  retryAfter?: number;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

/**
 * The one error type the domain throws; mapped to HTTP in one middleware.
 * `message` is what the client reads; `internalMessage` is what the logs read.
 */
export class AppError extends Error {
  readonly status: number;
  readonly internalMessage: string;
  readonly detail: unknown;
  readonly fields: Record<string, unknown>;
  readonly retryAfter: number | undefined;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    opts: AppErrorOptions,
  ) {
    super(opts.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "AppError";
    this.internalMessage = opts.internal ?? opts.message;
    this.status = ERROR_STATUS[code];
    this.detail = opts.detail ?? null;
    this.fields = opts.fields ?? {};
    this.retryAfter = opts.retryAfter;
    this.headers = opts.headers ?? {};
  }
}

export interface FieldIssue {
  path: string;
  message: string;
}

/**
 * A 422 listing each wrong field once: the first problem found at a path. A schema
 * may report more than one for the same value, and the later ones mislead (a string
 * where an array is expected also fails the array's length check, measured on the string).
 */
export const validationError = (all: FieldIssue[]): AppError => {
  const seen = new Set<string>();
  const issues = all.filter((i) => !seen.has(i.path) && seen.add(i.path));
  return new AppError("ValidationError", {
    message:
      issues.length === 1
        ? `Invalid request: ${issues[0]!.path ? `${issues[0]!.path}: ` : ""}${issues[0]!.message}`
        : `Invalid request: ${issues.length} problems (see detail)`,
    detail: issues,
  });
};

export const notFound = (what: string): AppError => new AppError("NotFound", { message: `${what} not found` });
export const forbidden = (what: string): AppError => new AppError("Forbidden", { message: `${what} belongs to another user` });
export const invalidState = (message: string): AppError => new AppError("InvalidState", { message });

/** Postgres or Redis is down: a 503 whose client message names no host; the cause goes to the logs. */
export const serviceUnavailable = (cause: unknown): AppError =>
  new AppError("ServiceUnavailable", {
    message: "A backing service (Postgres or Redis) is unavailable; nothing was changed, try again shortly",
    internal: `backing service unavailable: ${describe(cause)}`,
    cause,
  });

/** One line about an unknown thrown value, for logs. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === "string" ? ` ${code}` : ""}: ${err.message.trim()}`;
  }
  return String(err);
}
