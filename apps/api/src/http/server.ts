import { createServer, type RequestListener, type Server } from "node:http";

export interface HttpTimeouts {
  /** Time a client has to send the request headers (HTTP_HEADERS_TIMEOUT_MS, default 10 s); then 408 and the connection closes. */
  headersTimeoutMs: number;
  /** Time a client has to send the whole request, body included (HTTP_REQUEST_TIMEOUT_MS, default 30 s). */
  requestTimeoutMs: number;
  /** Idle time before a keep-alive connection is closed (HTTP_KEEP_ALIVE_TIMEOUT_MS, default 5 s). */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000 };

/**
 * The API's HTTP server, with bounds on how long a slow client may hold a
 * connection and its buffers. Node checks the header and request deadlines on
 * an interval (30 s by default, longer than the deadlines here), so the
 * interval is tightened to a fraction of the shortest one.
 */
export function createHttpServer(app: RequestListener, t: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS): Server {
  const headersTimeout = Math.min(t.headersTimeoutMs, t.requestTimeoutMs);
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: t.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
    },
    app,
  );
  server.keepAliveTimeout = t.keepAliveTimeoutMs;
  return server;
}
