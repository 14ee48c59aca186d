import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { NarrationError } from "./simulation.ts";

export interface OpenAIOptions {
  /** e.g. `https://api.openai.com/v1`; `/chat/completions` is appended. */
  baseUrl: string;
  apiKey: string;
  model: string;
  /** Per-request timeout. Default 30 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt on 429, 5xx, timeouts and network errors. Default 3. */
  maxRetries?: number;
  /** First backoff delay, doubled per retry (Retry-After wins when sent, capped at 30 s). Default 500 ms. */
  retryBaseDelayMs?: number;
  /** Completion length cap per step. Default 600 tokens. */
  maxTokens?: number;
  /**
   * Receives the provider's own error detail (its error text can hold a masked
   * key or billing details), which never reaches the job's error_message.
   * Default: one JSON line on stderr, i.e. the worker's log stream.
   */
  onProviderError?: (event: ProviderErrorEvent) => void;
}

export interface ProviderErrorEvent {
  /** HTTP status, or null for a timeout, a network error or an unreadable response. */
  status: number | null;
  /** What went wrong, for operators: the provider's error text, shortened. */
  detail: string;
  retryable: boolean;
  /** 1-based attempt number within one chat completion. */
  attempt: number;
}

/** Default sink: a log line in the shape of the service's logger (level, service, message, fields). */
export const logProviderErrorToStderr = (e: ProviderErrorEvent): void => {
  process.stderr.write(
    `${JSON.stringify({
      timestamp: new Date().toISOString(),
      level: "warn",
      service: "engine",
      message: "LLM provider error",
      status: e.status,
      detail: e.detail,
      retryable: e.retryable,
      attempt: e.attempt,
    })}\n`,
  );
};

const STATUS_WORDS: Record<number, string> = {
  400: "request rejected",
  401: "authentication failed",
  402: "payment required",
  403: "access denied",
  404: "model or endpoint not found",
  408: "request timeout",
  409: "conflict",
  413: "request too large",
  422: "request rejected",
  429: "rate limited",
  500: "provider error",
  502: "bad gateway",
  503: "provider unavailable",
  504: "gateway timeout",
};

/**
 * What the job's error_message says about a provider failure: the HTTP status
 * and a generic word for it, never the provider's own text.
 */
export function providerErrorMessage(status: number): string {
  const word = STATUS_WORDS[status] ?? (status >= 500 ? "provider error" : "request rejected");
  return `LLM provider error: HTTP ${status} (${word})`;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

const CompletionSchema = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1),
  usage: z.object({ total_tokens: z.number().int().min(0) }),
});

const MAX_RETRY_AFTER_MS = 30_000;

/**
 * A failure worth another attempt (rate limit, server error, timeout, network) or
 * not. `message` is safe to show clients; `detail` is for the logs only.
 */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs: number | null = null,
    readonly status: number | null = null,
    readonly detail: string = message,
  ) {
    super(message);
  }
}

/**
 * One chat completion with retries. Retries are safe because a failed attempt
 * produced nothing we keep or charge; only the successful response's usage counts.
 */
export async function chatCompletion(opts: OpenAIOptions, messages: ChatMessage[]): Promise<{ content: string; totalTokens: number }> {
  const retries = opts.maxRetries ?? 3;
  const report = opts.onProviderError ?? logProviderErrorToStderr;
  let last: AttemptError | null = null;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (last) await sleep(last.retryAfterMs ?? (opts.retryBaseDelayMs ?? 500) * 2 ** (attempt - 1));
    try {
      return await attemptOnce(opts, messages);
    } catch (err) {
      if (!(err instanceof AttemptError)) throw err;
      try {
        report({ status: err.status, detail: err.detail, retryable: err.retryable, attempt: attempt + 1 });
      } catch {
        /* a failing log sink must not change the run's outcome */
      }
      if (!err.retryable) throw new NarrationError(err.message, false);
      last = err;
    }
  }
  throw new NarrationError(`${last?.message ?? "LLM provider error"} (gave up after ${retries + 1} attempts)`, true);
}

async function attemptOnce(opts: OpenAIOptions, messages: ChatMessage[]): Promise<{ content: string; totalTokens: number }> {
  let res: Response;
  try {
    res = await fetch(`${opts.baseUrl.replace(/\/+$/, "")}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${opts.apiKey}` },
      body: JSON.stringify({ model: opts.model, messages, max_tokens: opts.maxTokens ?? 600, temperature: 0.8 }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
  } catch (err) {
    // Read the name structurally: errors from another realm (e.g. fetch's DOMException under a test VM) fail instanceof.
    const raw = (err as { name?: unknown } | null)?.name;
    const name = typeof raw === "string" ? raw : "Error";
    throw new AttemptError(
      name === "TimeoutError" ? `LLM provider error: timed out after ${opts.timeoutMs ?? 30_000} ms` : `LLM provider error: network error (${name})`,
      true,
    );
  }
  const text = await res.text().catch(() => "");
  if (!res.ok) {
    const message = providerErrorMessage(res.status);
    const detail = `HTTP ${res.status}: ${errorDetail(text) || "(empty body)"}`;
    if (res.status === 429 || res.status >= 500) throw new AttemptError(message, true, retryAfter(res.headers.get("retry-after")), res.status, detail);
    throw new AttemptError(message, false, null, res.status, detail);
  }
  const parsed = CompletionSchema.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new AttemptError(
      "LLM provider error: the response was not a chat completion with usage",
      false,
      null,
      res.status,
      `unexpected response: ${errorDetail(text)}`,
    );
  }
  return { content: parsed.data.choices[0]!.message.content ?? "", totalTokens: parsed.data.usage.total_tokens };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The provider's own error message, shortened, for the logs only; never echoes request headers. */
function errorDetail(text: string): string {
  const body = safeJson(text) as { error?: { message?: unknown } } | null;
  const msg = typeof body?.error?.message === "string" ? body.error.message : text;
  return msg.replace(/\s+/g, " ").trim().slice(0, 500);
}

function retryAfter(header: string | null): number | null {
  const secs = header === null ? NaN : Number(header);
  return Number.isFinite(secs) && secs >= 0 ? Math.min(secs * 1000, MAX_RETRY_AFTER_MS) : null;
}
