import {
  BatchReportQuerySchema,
  CancelBatchRequestSchema,
  CreateBatchQuerySchema,
  CreateBatchRequestSchema,
  ListBatchesQuerySchema,
  MAX_BATCH_SIMULATIONS,
  usdToMicros,
} from "@simbatch/contracts";
import {
  admitBatch,
  admittedBatch,
  batchJobs,
  batchReport,
  batchReportCsv,
  batchResultRows,
  batchDeliveries,
  batchStats,
  cancelBatch,
  dryRunBatch,
  pauseBatch,
  resumeBatch,
  webhookUrlProblem,
  listBatches,
  loadBatchAggregate,
  loadOwnedBatch,
  reportMarkdown,
  resolveSimulation,
  type BatchOptions,
  type ResolvedSimulation,
} from "@simbatch/core";
import { validationError, type FieldIssue } from "@simbatch/errors";
import type { Batch } from "@simbatch/db";
import type { RequestHandler, Response } from "express";
import type { ApiDeps } from "../deps.ts";
import { user } from "../http/auth.ts";
import { locals } from "../http/request-context.ts";
import { parse, toIssues } from "../http/validate.ts";
import { batchListView, batchResultLine, batchViewOf, deliveriesView, dryRunView, jobView } from "@simbatch/views";
import { idempotentRequest, sendReplay } from "../http/idempotency.ts";
import { kickDispatch } from "./simulations.routes.ts";

export function batchHandlers(deps: ApiDeps) {
  /**
   * POST /simulations/batch. `?dry_run=true` runs the admission checks and writes
   * nothing (an Idempotency-Key is ignored there); otherwise a key makes the
   * create replayable (see core/idempotency.ts).
   */
  const create: RequestHandler = async (req, res) => {
    const u = user(res);
    const dryRun = parse(CreateBatchQuerySchema, req.query).dry_run ?? false;
    const idemRequest = dryRun ? null : idempotentRequest(req, u.id, "POST /simulations/batch");
    // One 422 names every wrong field: the batch's own and each simulation's, whichever fail.
    const top = CreateBatchRequestSchema.safeParse(req.body);
    const issues: FieldIssue[] = top.success ? [] : toIssues(top.error);
    const sims: ResolvedSimulation[] = [];
    const rawSims = (req.body as { simulations?: unknown }).simulations;
    if (Array.isArray(rawSims) && rawSims.length <= MAX_BATCH_SIMULATIONS) {
      rawSims.forEach((raw, i) => {
        const r = resolveSimulation(deps.catalog, raw, `simulations.${i}`);
        if (r.ok) sims.push(r.value);
        else issues.push(...r.issues);
      });
    }
    const webhookUrl = top.success ? top.data.webhook_url : null;
    const webhookProblem = webhookUrl == null ? null : webhookUrlProblem(webhookUrl, deps.config.webhookAllowPrivate ?? false);
    if (webhookProblem) issues.push({ path: "webhook_url", message: webhookProblem });
    if (!top.success || issues.length > 0) throw validationError(issues);
    const body = top.data;
    const opts: BatchOptions = {
      parallelJobs: body.parallel_jobs ?? 3,
      failFast: body.fail_fast ?? false,
      budgetCapMicros: body.budget_cap_usd == null ? null : usdToMicros(body.budget_cap_usd),
      priority: body.priority ?? 50,
      metadata: body.metadata ?? null,
      webhookUrl: body.webhook_url ?? null,
    };
    if (dryRun) {
      res.status(200).json(dryRunView(await dryRunBatch(deps, u.id, sims, opts, u.tier)));
      return;
    }
    const respond = (batch: Batch) => ({ status: 202, body: batchViewOf(admittedBatch(batch)) });
    const admitted = await admitBatch(deps, u.id, sims, opts, locals(res).requestId, u.tier, idemRequest ? { request: idemRequest, respond } : undefined);
    if (admitted.replay) return sendReplay(res, admitted.replay);
    const batch = admitted.created;
    locals(res).log.info("batch accepted", { batch_id: batch.id, total_jobs: batch.totalJobs, priority: batch.priority });
    kickDispatch(deps, locals(res).log);
    res.status(202).json(respond(batch).body);
  };

  const list: RequestHandler = async (req, res) => {
    const q = parse(ListBatchesQuerySchema, req.query);
    res.json(batchListView(await listBatches(deps.db, user(res).id, q.status, { page: q.page ?? 1, pageSize: q.page_size ?? 20 })));
  };

  const stats: RequestHandler = async (_req, res) => {
    res.json(await batchStats(deps.db, user(res).id));
  };

  const get: RequestHandler = async (req, res) => {
    const batch = await loadOwnedBatch(deps.db, user(res).id, String(req.params.batch_id));
    res.json(batchViewOf(await loadBatchAggregate(deps.db, batch)));
  };

  const jobs: RequestHandler = async (req, res) => {
    const batch = await loadOwnedBatch(deps.db, user(res).id, String(req.params.batch_id));
    const [withAggregate, jobList] = await Promise.all([loadBatchAggregate(deps.db, batch), batchJobs(deps.db, batch.id)]);
    res.json({ batch: batchViewOf(withAggregate), jobs: jobList.map(jobView) });
  };

  const cancel: RequestHandler = async (req, res) => {
    const body = parse(CancelBatchRequestSchema, req.body);
    const batch = await cancelBatch(deps, user(res).id, String(req.params.batch_id), body.reason ?? null, body.cancel_running ?? true);
    locals(res).log.info("batch cancelled", { batch_id: batch.id, cancel_running: body.cancel_running ?? true });
    res.json(batchViewOf(await loadBatchAggregate(deps.db, batch)));
  };

  const pause: RequestHandler = async (req, res) => {
    const batch = await pauseBatch(deps, user(res).id, String(req.params.batch_id));
    locals(res).log.info("batch paused", { batch_id: batch.id });
    res.json(batchViewOf(await loadBatchAggregate(deps.db, batch)));
  };

  const resume: RequestHandler = async (req, res) => {
    const batch = await resumeBatch(deps, user(res).id, String(req.params.batch_id));
    locals(res).log.info("batch resumed", { batch_id: batch.id });
    res.json(batchViewOf(await loadBatchAggregate(deps.db, batch)));
  };

  const webhookDeliveries: RequestHandler = async (req, res) => {
    const batch = await loadOwnedBatch(deps.db, user(res).id, String(req.params.batch_id));
    res.json(deliveriesView(await batchDeliveries(deps.db, batch.id)));
  };

  /**
   * NDJSON, one line per job in job_ids order, streamed from Postgres page by page:
   * each line is written when the socket has room ('drain' otherwise), and the
   * stream stops when the client goes away, so a request holds one page at most.
   * The first page is read before the status line, so a failure there is a clean
   * error response; a failure later can only cut the stream (the connection is
   * destroyed, so the client sees an incomplete body, never a complete-looking one).
   */
  const results: RequestHandler = async (req, res) => {
    const batch = await loadOwnedBatch(deps.db, user(res).id, String(req.params.batch_id));
    const rows = batchResultRows(deps.db, batch.id);
    let closed = false;
    res.on("close", () => (closed = true));
    let next = await rows.next();
    res.status(200);
    res.setHeader("Content-Type", "application/x-ndjson");
    res.setHeader("Cache-Control", "no-store");
    res.flushHeaders();
    try {
      while (!next.done && !closed) {
        if (!res.write(batchResultLine(next.value))) await drained(res);
        if (closed) break;
        next = await rows.next();
      }
    } catch (err) {
      locals(res).log.error("batch results stream failed", { batch_id: batch.id, error: (err as Error)?.message });
      res.destroy(err as Error);
      return;
    } finally {
      await rows.return(undefined);
    }
    if (!closed) res.end();
  };

  const report: RequestHandler = async (req, res) => {
    const q = parse(BatchReportQuerySchema, req.query);
    const batch = await loadOwnedBatch(deps.db, user(res).id, String(req.params.batch_id));
    const format = q.format ?? "json";
    if (format === "csv") {
      const csv = await batchReportCsv(deps.db, batch);
      res.status(200).setHeader("Content-Type", "text/csv; charset=utf-8");
      res.send(csv);
      return;
    }
    const body = await batchReport(deps.db, batch);
    if (format === "markdown") {
      res.status(200).setHeader("Content-Type", "text/markdown; charset=utf-8");
      res.send(reportMarkdown(body));
      return;
    }
    res.json(body);
  };

  return { create, list, stats, get, jobs, cancel, pause, resume, webhookDeliveries, results, report };
}

/** Resolves when the response can take more ('drain') or is gone ('close'). */
function drained(res: Response): Promise<void> {
  if (res.destroyed || res.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
