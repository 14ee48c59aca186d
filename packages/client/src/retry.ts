import type { SimbatchError } from "./errors.ts";

/** How failed attempts are retried (all durations in milliseconds). */
export interface RetryPolicy {
  /** Retries after the first attempt. Default 2. */
  maxRetries: number;
  /** First backoff; doubles per retry. Default 500. */
  initialDelayMs: number;
  /** Ceiling of the exponential backoff. Default 8,000. */
  maxDelayMs: number;
  /**
   * The longest `Retry-After` worth waiting for. A 429 asking for longer (a monthly
   * quota resets in days) is thrown at once instead. Default 60,000.
   */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 2, initialDelayMs: 500, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 };

/**
 * Exponential backoff with jitter for retry number `retry` (0-based): a random
 * point in the upper half of min(max, initial × 2^retry), so clients that failed
 * together do not come back together.
 */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** retry);
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * The wait before retrying a request that got an error response, or null when it
 * must not be retried. 429 (every limit the contract has) and 503 are refused
 * before anything is written, and a 409 `IdempotencyKeyInProgress` clears once the
 * first request with the key is admitted: all are safe to send again, after
 * `Retry-After` when the server gave one (plus up to 10% jitter).
 */
export function retryDelayMs(policy: RetryPolicy, error: SimbatchError, retry: number, random: () => number = Math.random): number | null {
  const retryable = error.status === 429 || error.status === 503 || error.code === "IdempotencyKeyInProgress";
  if (!retryable) return null;
  if (error.retryAfter === null) return backoffMs(policy, retry, random);
  const wait = error.retryAfter * 1000;
  if (wait > policy.maxRetryAfterMs) return null;
  return wait + random() * wait * 0.1;
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
