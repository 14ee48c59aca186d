import type { ErrorCode } from "@simbatch/errors";
import type { ErrorBody, FieldIssue } from "./types.ts";

/** Codes the client itself raises when no API error body could be had. */
export type ClientErrorCode = "ConnectionError" | "TimeoutError" | "UnexpectedResponse";

/** The top-level fields limit errors carry next to the error body's four (contract: Error body). */
const LIMIT_FIELDS = [
  "tier",
  "max_batch_size",
  "estimated_cost_usd",
  "api_calls_used",
  "api_calls_limit",
  "simulations_used",
  "simulations_limit",
  "cost_used_usd",
  "cost_limit_usd",
  "active_jobs",
  "concurrency_limit",
  "limit",
] as const satisfies readonly (keyof ErrorBody)[];

export interface SimbatchErrorInit {
  status: number | null;
  code: ErrorCode | ClientErrorCode | (string & {});
  message: string;
  requestId?: string | null;
  detail?: unknown;
  retryAfter?: number | null;
  body?: ErrorBody | null;
  cause?: unknown;
}

/**
 * Every error the client throws (a caller's own abort aside, which surfaces as
 * the signal's reason). API errors are one subclass per error code, named as the
 * code; limit errors also carry the contract's limit fields under their wire names.
 */
export class SimbatchError extends Error {
  /** HTTP status; null when no response arrived (connection error, timeout). */
  readonly status: number | null;
  readonly code: ErrorCode | ClientErrorCode | (string & {});
  /** `X-Request-Id` of the failed response (quote it when reporting a problem). */
  readonly requestId: string | null;
  readonly detail: unknown;
  /** Seconds from the `Retry-After` header, when the response had one. */
  readonly retryAfter: number | null;
  /** The parsed error body, when the API sent one. */
  readonly body: ErrorBody | null;

  constructor(init: SimbatchErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId ?? null;
    this.detail = init.detail ?? null;
    this.retryAfter = init.retryAfter ?? null;
    this.body = init.body ?? null;
    if (init.body) {
      for (const f of LIMIT_FIELDS) if (init.body[f] !== undefined) Object.defineProperty(this, f, { value: init.body[f], enumerable: true });
    }
  }
}

/** No response: the connection failed or was reset. */
export class ConnectionError extends SimbatchError {}
/** No response within `timeoutMs`. */
export class TimeoutError extends ConnectionError {}

export class ValidationError extends SimbatchError {
  declare readonly detail: FieldIssue[];
}
export class Unauthorized extends SimbatchError {}
export class Forbidden extends SimbatchError {}
export class NotFound extends SimbatchError {}
export class MethodNotAllowed extends SimbatchError {}
export class PayloadTooLarge extends SimbatchError {}
export class InvalidState extends SimbatchError {}
export class BatchTooLarge extends SimbatchError {
  declare readonly tier: string;
  declare readonly max_batch_size: number;
}
export class BudgetTooLow extends SimbatchError {
  declare readonly estimated_cost_usd: number;
}
export class QuotaExceeded extends SimbatchError {
  declare readonly api_calls_used: number;
  declare readonly api_calls_limit: number;
}
export class SimulationQuotaExceeded extends SimbatchError {
  declare readonly simulations_used: number;
  declare readonly simulations_limit: number;
}
export class CostQuotaExceeded extends SimbatchError {
  declare readonly cost_used_usd: number;
  declare readonly cost_limit_usd: number;
}
export class ConcurrencyLimitExceeded extends SimbatchError {
  declare readonly active_jobs: number;
  declare readonly concurrency_limit: number;
}
export class RateLimitExceeded extends SimbatchError {
  declare readonly tier: string;
  declare readonly limit: number;
}
export class IdempotencyKeyReused extends SimbatchError {}
export class IdempotencyKeyInProgress extends SimbatchError {}
export class ServiceUnavailable extends SimbatchError {}
export class InternalError extends SimbatchError {}

type ErrorClass = new (init: SimbatchErrorInit) => SimbatchError;

/**
 * The class for each code. Keyed by packages/errors' code list, so a code added
 * there fails to compile here until it has its class.
 */
export const ERROR_CLASSES = {
  ValidationError,
  Unauthorized,
  Forbidden,
  NotFound,
  MethodNotAllowed,
  PayloadTooLarge,
  InvalidState,
  BatchTooLarge,
  BudgetTooLow,
  QuotaExceeded,
  SimulationQuotaExceeded,
  CostQuotaExceeded,
  ConcurrencyLimitExceeded,
  RateLimitExceeded,
  IdempotencyKeyReused,
  IdempotencyKeyInProgress,
  ServiceUnavailable,
  InternalError,
} satisfies Record<ErrorCode, ErrorClass>;

const isKnownCode = (code: unknown): code is keyof typeof ERROR_CLASSES => typeof code === "string" && Object.hasOwn(ERROR_CLASSES, code);

/** The error for a non-2xx response: the class of its body's code, else the base class. */
export function errorFromResponse(status: number, text: string, headers: Headers): SimbatchError {
  const requestId = headers.get("x-request-id");
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  let body: ErrorBody | null = null;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") body = parsed as ErrorBody;
  } catch {}
  if (!body) {
    const message = `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ""}`;
    return new SimbatchError({ status, code: "UnexpectedResponse", message, requestId, retryAfter });
  }
  const Class: ErrorClass = isKnownCode(body.error) ? ERROR_CLASSES[body.error] : SimbatchError;
  return new Class({ status, code: body.error, message: body.message, requestId: body.request_id ?? requestId, detail: body.detail, retryAfter, body });
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - now) / 1000);
}
