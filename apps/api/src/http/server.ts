import { createServer, type RequestListener, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { newRequestId } from "@simbatch/contracts";

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
  server.on("clientError", answerClientError);
  return server;
}

/**
 * Requests Node refuses before they reach the app get the contract's error body
 * and a request id, like every other refusal, and the connection closes: a
 * request line or headers over Node's limit (16 KiB) is 431 `PayloadTooLarge`,
 * a client too slow to send its request 408 `RequestTimeout`, and a request
 * that is not HTTP (a header line without a colon, bad chunked framing, an
 * invalid Content-Length) 400 `BadRequest` (docs/api-decisions.md).
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const headersSent = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (socket.writable && !headersSent) {
    if (err.code === "HPE_HEADER_OVERFLOW") {
      socket.write(rawError("431 Request Header Fields Too Large", "PayloadTooLarge", "Request line and headers exceed 16 KiB"));
    } else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      socket.write(
        rawError("408 Request Timeout", "RequestTimeout", "The request did not arrive in time: headers and body must be sent within the server's timeouts"),
      );
    } else {
      socket.write(rawError("400 Bad Request", "BadRequest", "Malformed HTTP request (its request line, headers or body framing could not be parsed)"));
    }
  }
  socket.destroy(err);
}

/** A whole HTTP response with the contract's error body, written to a socket the app never saw. */
function rawError(statusLine: string, error: string, message: string): string {
  const requestId = newRequestId();
  const body = JSON.stringify({ error, message, detail: null, request_id: requestId });
  return (
    `HTTP/1.1 ${statusLine}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `X-Request-Id: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
