import { AppError } from "@simbatch/errors";
import express, { type Express } from "express";
import type { ApiDeps } from "./deps.ts";
import { requireAdmin } from "./http/admin-auth.ts";
import { jsonBody, requireApiKey } from "./http/auth.ts";
import { contentLengthGuard, readBody } from "./http/body.ts";
import { errorHandler } from "./http/errors.ts";
import { ApiMetrics, operationsHandlers } from "./http/metrics.ts";
import { apiCallQuota } from "./http/gates.ts";
import { requestContext } from "./http/request-context.ts";
import { RouteTable } from "./http/route-table.ts";
import { queueBoard, QUEUE_BOARD_PATH } from "./http/queue-board.ts";
import { adminHandlers } from "./routes/admin.routes.ts";
import { dashboardHandlers } from "./routes/dashboard.routes.ts";
import { batchHandlers } from "./routes/batches.routes.ts";
import { healthHandlers } from "./routes/health.routes.ts";
import { simulationHandlers } from "./routes/simulations.routes.ts";
import { templateHandlers } from "./routes/templates.routes.ts";
import { usageHandlers } from "./routes/usage.routes.ts";
import { liveHandlers } from "./routes/live.routes.ts";
import { liveHub, type LiveHub } from "./live/hub.ts";

/**
 * The HTTP app. Check order on every authenticated request: body size (413) →
 * route (404/405) → auth (401) → API-call quota (429, counts the call) → rate
 * limit (429) → JSON and validation (422) → the route's own checks. The usage
 * routes count like every authenticated call but are never refused by the
 * quota, so a client at its limit can still see why (docs/usage-and-quotas.md).
 * A declared Content-Length over the limit is refused before anything else; a
 * body is read only on the routes that take one (POST, PATCH), and there before
 * auth so that a chunked body past the limit is 413 too. Without ADMIN_TOKEN no
 * admin route exists: every /admin/* path and method is 404.
 *
 * The dashboards (docs/dashboard.md) take the admin token as a browser sends it
 * too (HTTP Basic). The queue board is a mounted app with its own paths: under
 * /admin/queues auth comes first, and what the board does not serve falls
 * through to the 404 below.
 */
export function createApp(deps: ApiDeps, live: LiveHub = liveHub(deps)): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", true);
  // Mount paths (the queue board) match case-sensitively, as the routes do; set before the first app.use builds the app's router.
  app.set("case sensitive routing", true);
  app.use(requestContext(deps.logger));
  const metrics = new ApiMetrics();
  app.use(metrics.middleware());
  app.use(contentLengthGuard(deps.config.maxBodyBytes));
  const body = readBody(deps.config.maxBodyBytes);

  const router = express.Router({ caseSensitive: true });
  const routes = new RouteTable(router);
  const quota = [apiCallQuota(deps.apiCalls, deps.limits, deps.clock)];
  const authed = [requireApiKey(deps.db), ...quota, ...deps.gates];
  const authedBody = [body, ...authed, jsonBody];
  const usageChain = [requireApiKey(deps.db), apiCallQuota(deps.apiCalls, deps.limits, deps.clock, { refuse: false }), ...deps.gates];

  const h = healthHandlers(deps);
  routes.add("get", "/", h.root);
  routes.add("get", "/health", h.health);
  routes.add("get", "/ready", h.ready);

  const t = templateHandlers(deps);
  routes.add("get", "/simulations/templates", ...authed, t.list);
  routes.add("get", "/simulations/templates/*template_id", ...authed, t.get);

  const b = batchHandlers(deps);
  routes.add("post", "/simulations/batch", ...authedBody, b.create);
  routes.add("get", "/simulations/batch", ...authed, b.list);
  routes.add("get", "/simulations/batch/stats", ...authed, b.stats);
  const u = usageHandlers(deps);
  routes.add("get", "/simulations/batch/usage", ...usageChain, u.usage);
  routes.add("get", "/simulations/batch/usage/history", ...usageChain, u.history);
  routes.add("get", "/simulations/batch/:batch_id", ...authed, b.get);
  routes.add("get", "/simulations/batch/:batch_id/jobs", ...authed, b.jobs);
  routes.add("get", "/simulations/batch/:batch_id/results", ...authed, b.results);
  routes.add("get", "/simulations/batch/:batch_id/report", ...authed, b.report);
  routes.add("post", "/simulations/batch/:batch_id/cancel", ...authedBody, b.cancel);
  routes.add("post", "/simulations/batch/:batch_id/pause", ...authedBody, b.pause);
  routes.add("post", "/simulations/batch/:batch_id/resume", ...authedBody, b.resume);
  routes.add("get", "/simulations/batch/:batch_id/webhook-deliveries", ...authed, b.webhookDeliveries);
  const l = liveHandlers(deps, live);
  routes.add("get", "/simulations/batch/:batch_id/events", ...authed, l.batchEvents);
  routes.add("get", "/webhooks/secret", ...authed, l.getSecret);
  routes.add("post", "/webhooks/secret/rotate", ...authedBody, l.rotateSecret);

  const s = simulationHandlers(deps);
  routes.add("post", "/simulations", ...authedBody, s.create);
  routes.add("get", "/simulations", ...authed, s.list);
  routes.add("get", "/simulations/stats", ...authed, s.stats);
  routes.add("get", "/simulations/:job_id", ...authed, s.get);
  routes.add("post", "/simulations/:job_id/cancel", ...authedBody, s.cancel);
  routes.add("get", "/simulations/:job_id/result", ...authed, s.result);
  routes.add("get", "/simulations/:job_id/exports/:format", ...authed, s.exportFile);
  routes.add("get", "/simulations/:job_id/events", ...authed, l.jobEvents);

  const adminToken = deps.config.adminToken;
  if (adminToken) {
    const adminAuth = requireAdmin({ token: adminToken, redis: deps.redis, redisPrefix: deps.redisPrefix, ...deps.config.adminAuth });
    const admin = [adminAuth];
    const adminBody = [body, adminAuth, jsonBody];
    const a = adminHandlers(deps);
    routes.add("post", "/admin/users", ...adminBody, a.createUser);
    routes.add("patch", "/admin/users/:user_id", ...adminBody, a.updateUser);
    routes.add("post", "/admin/users/:user_id/api-keys", ...adminBody, a.createKey);
    routes.add("delete", "/admin/api-keys/:key_id", ...admin, a.revokeKey);
    const ops = operationsHandlers(deps, metrics);
    routes.add("get", "/admin/metrics", ...admin, ops.prometheus);
    routes.add("get", "/admin/operations", ...admin, ops.snapshot);
    routes.add("post", "/admin/users/:user_id/usage-adjustments", ...adminBody, a.adjustUsage);

    const browserAuth = requireAdmin({ token: adminToken, redis: deps.redis, redisPrefix: deps.redisPrefix, ...deps.config.adminAuth, browser: true });
    const d = dashboardHandlers(deps);
    routes.add("get", "/admin/dashboard", browserAuth, d.page);
    routes.add("get", "/admin/dashboard/data", browserAuth, d.data);
    app.use(QUEUE_BOARD_PATH, browserAuth, queueBoard(deps.queues.all(), deps.redisPrefix));
  }

  // No route takes OPTIONS (no CORS: the API is for servers and the CLI; the dashboards are same-origin):
  // it is 405 with Allow, as any other method a path does not take, not the router's automatic 200.
  const fallback = routes.fallback();
  app.use((req, res, next) => (req.method === "OPTIONS" ? fallback(req, res, next) : next()));
  // No id, name or format holds NUL (Postgres text cannot), so a path with %00 names nothing: 404 before auth, like one that does not decode.
  app.use((req, _res, next) => (/%00/.test(req.path) ? next(new AppError("NotFound", { message: "Not found: the path holds a NUL (%00)" })) : next()));
  app.use(router);
  app.use(fallback);
  app.use(errorHandler);
  return app;
}
