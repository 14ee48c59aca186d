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
}

export interface ChatMessage { role: "system" | "user" | "assistant"; content: string }

const CompletionSchema = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1),
  usage: z.object({ total_tokens: z.number().int().min(0) }),
});

const MAX_RETRY_AFTER_MS = 30_000;

/** A failure worth another attempt (rate limit, server error, timeout, network) or not. */
class AttemptError extends Error {
  constructor(message: string, readonly retryable: boolean, readonly retryAfterMs: number | null = null) { super(message); }
}

/**
 * One chat completion with retries. Retries are safe because a failed attempt
 * produced nothing we keep or charge; only the successful response's usage counts.
 */
export async function chatCompletion(opts: OpenAIOptions, messages: ChatMessage[]): Promise<{ content: string; totalTokens: number }> {
  const retries = opts.maxRetries ?? 3;
  let last: AttemptError | null = null;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (last) await sleep(last.retryAfterMs ?? (opts.retryBaseDelayMs ?? 500) * 2 ** (attempt - 1));
    try {
      return await attemptOnce(opts, messages);
    } catch (err) {
      if (!(err instanceof AttemptError)) throw err;
      if (!err.retryable) throw new NarrationError(err.message, false);
      last = err;
    }
  }
  throw new NarrationError(`LLM request failed after ${retries + 1} attempts: ${last?.message ?? "unknown error"}`, true);
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
    throw new AttemptError(name === "TimeoutError" ? `timed out after ${opts.timeoutMs ?? 30_000} ms` : `network error (${name})`, true);
  }
  const text = await res.text();
  if (!res.ok) {
    const detail = errorDetail(text);
    const msg = `HTTP ${res.status}${detail ? `: ${detail}` : ""}`;
    if (res.status === 429 || res.status >= 500) throw new AttemptError(msg, true, retryAfter(res.headers.get("retry-after")));
    throw new AttemptError(`LLM request rejected with ${msg}`, false);
  }
  const parsed = CompletionSchema.safeParse(safeJson(text));
  if (!parsed.success) throw new AttemptError("LLM response was not a chat completion with usage", false);
  return { content: parsed.data.choices[0]!.message.content ?? "", totalTokens: parsed.data.usage.total_tokens };
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return null; }
}

/** The provider's own error message, shortened; never echoes request headers. */
function errorDetail(text: string): string {
  const body = safeJson(text) as { error?: { message?: unknown } } | null;
  const msg = typeof body?.error?.message === "string" ? body.error.message : text;
  return msg.replace(/\s+/g, " ").trim().slice(0, 200);
}

function retryAfter(header: string | null): number | null {
  const secs = header === null ? NaN : Number(header);
  return Number.isFinite(secs) && secs >= 0 ? Math.min(secs * 1000, MAX_RETRY_AFTER_MS) : null;
}
