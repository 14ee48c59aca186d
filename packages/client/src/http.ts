import { version } from "../package.json";
import { ConnectionError, errorFromResponse, SimbatchError, TimeoutError } from "./errors.ts";
import { backoffMs, DEFAULT_RETRY, retryDelayMs, sleep, type RetryPolicy } from "./retry.ts";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";
/** Sent in `User-Agent`; the package's own version (bundled from package.json at build time). */
export const CLIENT_VERSION: string = version;

/** Options of `new Simbatch(...)`. */
export interface ClientOptions {
  /** The API's root URL. Default `http://127.0.0.1:8080`. */
  baseUrl?: string;
  /** `tp_` + 32 hex; sent as `X-API-Key`. */
  apiKey?: string;
  /** Per attempt: time allowed for the response (for streams, for its headers). Default 60,000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt (see RetryPolicy). Default 2. */
  maxRetries?: number;
  /** Finer retry settings; `maxRetries` above wins over `retry.maxRetries`. */
  retry?: Partial<RetryPolicy>;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A fetch implementation. Default the global fetch. */
  fetch?: typeof fetch;
}

/** Options every method accepts as its last argument. */
export interface RequestOptions {
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Overrides the client's `maxRetries` for this call. */
  maxRetries?: number;
  /** Sent as `X-Request-Id` (the API echoes it and logs under it). */
  requestId?: string;
}

/** Options of the create methods. */
export interface CreateOptions extends RequestOptions {
  /**
   * Sent as `Idempotency-Key`. Default: a new random key per call, reused by the
   * call's own retries, so a retried create never makes a second batch or job.
   */
  idempotencyKey?: string;
}

export const newIdempotencyKey = (): string => globalThis.crypto.randomUUID();

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface Call extends RequestOptions {
  method: "GET" | "POST";
  path: string;
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * Safe to send again after a connection error or timeout: GETs, and creates
   * (they carry an idempotency key). Every call is retried on 429 and 503.
   */
  idempotent: boolean;
}

/** Encodes one path segment (ids never need it; template ids keep their `/`). */
export const seg = (s: string): string => encodeURIComponent(s);

/** Sends requests with timeouts, retries and typed errors. */
export class Http {
  readonly baseUrl: string;
  private readonly policy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: ClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.policy = { ...DEFAULT_RETRY, ...opts.retry, ...(opts.maxRetries === undefined ? {} : { maxRetries: opts.maxRetries }) };
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  get retryPolicy(): RetryPolicy {
    return this.policy;
  }

  /** The parsed JSON body of a 2xx response. */
  async json<T>(call: Call): Promise<T> {
    const { text } = await this.send(call, false);
    return JSON.parse(text) as T;
  }

  /** The body of a 2xx response as text. */
  async text(call: Call): Promise<string> {
    return (await this.send(call, false)).text;
  }

  /** A 2xx response whose body is still to be read (downloads, NDJSON, event streams). */
  async stream(call: Call): Promise<Response> {
    return (await this.send(call, true)).res;
  }

  private async send(call: Call, streaming: boolean): Promise<{ res: Response; text: string }> {
    const maxRetries = call.maxRetries ?? this.policy.maxRetries;
    for (let retry = 0; ; retry++) {
      let outcome: { res: Response; text: string };
      try {
        outcome = await this.attempt(call, streaming);
      } catch (err) {
        if (call.signal?.aborted) throw call.signal.reason;
        const error = err instanceof SimbatchError ? err : new ConnectionError({ status: null, code: "ConnectionError", message: describe(err), cause: err });
        if (!call.idempotent || retry >= maxRetries) throw error;
        await sleep(backoffMs(this.policy, retry), call.signal);
        continue;
      }
      if (outcome.res.ok) return outcome;
      const error = errorFromResponse(outcome.res.status, outcome.text, outcome.res.headers);
      const delay = retry < maxRetries ? retryDelayMs(this.policy, error, retry) : null;
      if (delay === null) throw error;
      await sleep(delay, call.signal);
    }
  }

  /**
   * One attempt. The timeout covers the whole exchange, except that a streamed
   * body may take as long as it takes once its headers have arrived.
   */
  private async attempt(call: Call, streaming: boolean): Promise<{ res: Response; text: string }> {
    const timeoutMs = call.timeoutMs ?? this.timeoutMs;
    const timer = new AbortController();
    const timeout = setTimeout(
      () => timer.abort(new TimeoutError({ status: null, code: "TimeoutError", message: `No response within ${timeoutMs} ms` })),
      timeoutMs,
    );
    const signal = call.signal ? AbortSignal.any([call.signal, timer.signal]) : timer.signal;
    try {
      const res = await this.fetchImpl(this.url(call.path, call.query), { method: call.method, headers: this.headers(call), body: this.body(call), signal });
      if (streaming && res.ok) return { res, text: "" };
      return { res, text: await res.text() };
    } catch (err) {
      if (timer.signal.aborted && !call.signal?.aborted) throw timer.signal.reason;
      throw err;
    } finally {
      clearTimeout(timeout);
    }
  }

  private url(path: string, query: Query = {}): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) qs.set(k, String(v));
    const s = qs.toString();
    return `${this.baseUrl}${path}${s ? `?${s}` : ""}`;
  }

  private headers(call: Call): Record<string, string> {
    return {
      Accept: "application/json",
      "User-Agent": `simbatch-client/${CLIENT_VERSION}`,
      ...(this.opts.apiKey ? { "X-API-Key": this.opts.apiKey } : {}),
      ...(call.body === undefined ? {} : { "Content-Type": "application/json" }),
      ...(call.requestId ? { "X-Request-Id": call.requestId } : {}),
      ...this.opts.headers,
      ...call.headers,
    };
  }

  private body(call: Call): string | undefined {
    return call.body === undefined ? undefined : JSON.stringify(call.body);
  }
}

/** One line about a fetch failure: undici hides the reason (ECONNREFUSED …) in `cause`. */
function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `Connection failed: ${e?.message ?? String(err)}${cause ? ` (${cause})` : ""}`;
}
