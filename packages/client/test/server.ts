import http from "node:http";
import type { AddressInfo } from "node:net";

/** What the server saw of one request. */
export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

export type Handler = (req: Seen, res: http.ServerResponse, n: number) => void | Promise<void>;

/**
 * A real HTTP server on a loopback port for the client's unit tests: each test
 * scripts the answers (the contract's error bodies, Retry-After, dropped
 * connections, event streams) and reads back what the client sent.
 */
export async function startServer(handler: Handler) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += String(c)));
    req.on("end", () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body, at: Date.now() };
      seen.push(s);
      Promise.resolve(handler(s, res, seen.length)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends a JSON body with the contract's headers. */
export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", "X-Request-Id": "req_test", ...headers });
  res.end(JSON.stringify(body));
}

/** An error body as the API sends it. */
export function apiError(
  res: http.ServerResponse,
  status: number,
  code: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void {
  json(res, status, { error: code, message: `${code} happened`, detail: null, request_id: "req_err", ...extra }, headers);
}

/** A batch object with the contract's fields; `over` replaces some. */
export function batchBody(over: Record<string, any> = {}): Record<string, any> {
  const total = over.total ?? 2;
  const done = over.done ?? 0;
  const status = over.status ?? (done === total ? "COMPLETED" : "RUNNING");
  return {
    batch_id: over.batch_id ?? "batch_aaaaaaaaaaaa",
    status,
    created_at: "2026-11-30T00:00:00.000Z",
    started_at: "2026-11-30T00:00:01.000Z",
    completed_at: done === total ? "2026-11-30T00:00:09.000Z" : null,
    priority: 50,
    fail_fast: false,
    parallel_jobs: 3,
    progress: {
      total_jobs: total,
      pending_jobs: 0,
      running_jobs: total - done,
      completed_jobs: done,
      failed_jobs: 0,
      cancelled_jobs: 0,
      progress_percent: (done / total) * 100,
    },
    cost: { estimated_cost_usd: 0.1, actual_cost_usd: done * 0.05, budget_cap_usd: null, budget_remaining_usd: null, tokens_used: done * 100 },
    job_ids: ["sim_aaaaaaaaaaaa", "sim_bbbbbbbbbbbb"].slice(0, total),
    stop_reason: null,
    error_message: null,
    cancel_reason: null,
    owner_id: "alice",
    metadata: null,
    paused: false,
    paused_at: null,
    eta_seconds: null,
    projected_cost_usd: 0.1,
    webhook_url: null,
  };
}
