import { CancelBatchRequestSchema, CreateBatchRequestSchema, ListBatchesQuerySchema } from "@simbatch/contracts";
import { admitBatch, admittedBatchView, batchJobs, batchStats, cancelBatch, getBatchView, listBatches, loadOwnedBatch, resolveSimulation, type ResolvedSimulation } from "@simbatch/core";
import { validationError, type FieldIssue } from "@simbatch/errors";
import type { RequestHandler } from "express";
import type { ApiDeps } from "../deps.ts";
import { user } from "../http/auth.ts";
import { locals } from "../http/request-context.ts";
import { parse } from "../http/validate.ts";
import { kickDispatch } from "./simulations.routes.ts";

export function batchHandlers(deps: ApiDeps) {
  const create: RequestHandler = async (req, res) => {
    const u = user(res);
    const body = parse(CreateBatchRequestSchema, req.body);
    const issues: FieldIssue[] = [];
    const sims: ResolvedSimulation[] = [];
    body.simulations.forEach((raw, i) => {
      const r = resolveSimulation(deps.catalog, raw, `simulations.${i}`);
      if (r.ok) sims.push(r.value);
      else issues.push(...r.issues);
    });
    if (issues.length > 0) throw validationError(issues);
    const { batch } = await admitBatch(
      deps,
      u.id,
      sims,
      {
        parallelJobs: body.parallel_jobs ?? 3,
        failFast: body.fail_fast ?? false,
        budgetCapMicros: body.budget_cap_usd == null ? null : Math.round(body.budget_cap_usd * 1_000_000),
        priority: body.priority ?? 50,
        metadata: body.metadata ?? null,
      },
      locals(res).requestId,
      u.tier,
    );
    locals(res).log.info("batch accepted", { batch_id: batch.id, total_jobs: batch.totalJobs, priority: batch.priority });
    kickDispatch(deps, locals(res).log);
    res.status(202).json(admittedBatchView(batch));
  };

  const list: RequestHandler = async (req, res) => {
    const q = parse(ListBatchesQuerySchema, req.query);
    res.json(await listBatches(deps.db, user(res).id, q.status, { page: q.page ?? 1, pageSize: q.page_size ?? 20 }));
  };

  const stats: RequestHandler = async (_req, res) => {
    res.json(await batchStats(deps.db, user(res).id));
  };

  const get: RequestHandler = async (req, res) => {
    const batch = await loadOwnedBatch(deps.db, user(res).id, String(req.params.batch_id));
    res.json(await getBatchView(deps.db, batch));
  };

  const jobs: RequestHandler = async (req, res) => {
    const batch = await loadOwnedBatch(deps.db, user(res).id, String(req.params.batch_id));
    const [view, jobList] = await Promise.all([getBatchView(deps.db, batch), batchJobs(deps.db, batch.id)]);
    res.json({ batch: view, jobs: jobList });
  };

  const cancel: RequestHandler = async (req, res) => {
    const body = parse(CancelBatchRequestSchema, req.body);
    const batch = await cancelBatch(deps, user(res).id, String(req.params.batch_id), body.reason ?? null, body.cancel_running ?? true);
    locals(res).log.info("batch cancelled", { batch_id: batch.id, cancel_running: body.cancel_running ?? true });
    res.json(await getBatchView(deps.db, batch));
  };

  return { create, list, stats, get, jobs, cancel };
}
