import { CancelRequestSchema, ListJobsQuerySchema } from "@simbatch/contracts";
import { admitSingle, cancelJob, requestDispatch, getExport, getResult, jobStats, listJobs, loadOwnedJob, resolveSimulation } from "@simbatch/core";
import { validationError } from "@simbatch/errors";
import type { SimulationJob } from "@simbatch/db";
import type { RequestHandler } from "express";
import { idempotentRequest, sendReplay } from "../http/idempotency.ts";
import type { ApiDeps } from "../deps.ts";
import { user } from "../http/auth.ts";
import { locals } from "../http/request-context.ts";
import { parse } from "../http/validate.ts";
import { jobListView, jobView } from "@simbatch/views";
import { jobResultView } from "@simbatch/views";

/** Ask for a dispatch pass right away so a new job starts without waiting for the reconciler's tick. */
export function kickDispatch(deps: ApiDeps, log = deps.logger): void {
  requestDispatch(deps).catch((err) => log.warn("dispatch after admission failed; the reconciler will release the jobs", { error: String(err) }));
}

export function simulationHandlers(deps: ApiDeps) {
  const create: RequestHandler = async (req, res) => {
    const u = user(res);
    // The Idempotency-Key header is checked before the body's fields, as on POST /simulations/batch.
    const idemRequest = idempotentRequest(req, u.id, "POST /simulations");
    const resolved = resolveSimulation(deps.catalog, req.body);
    if (!resolved.ok) throw validationError(resolved.issues);
    const respond = (job: SimulationJob) => ({ status: 202, body: jobView(job) });
    const admitted = await admitSingle(deps, u.id, resolved.value, locals(res).requestId, u.tier, idemRequest ? { request: idemRequest, respond } : undefined);
    if (admitted.replay) return sendReplay(res, admitted.replay);
    const job = admitted.created;
    locals(res).log.info("simulation accepted", { job_id: job.id, template_id: job.templateId });
    kickDispatch(deps, locals(res).log);
    res.status(202).json(respond(job).body);
  };

  const list: RequestHandler = async (req, res) => {
    const q = parse(ListJobsQuerySchema, req.query);
    res.json(jobListView(await listJobs(deps.db, user(res).id, q.status ?? q.status_filter, { page: q.page ?? 1, pageSize: q.page_size ?? 20 })));
  };

  const stats: RequestHandler = async (_req, res) => {
    res.json(await jobStats(deps.db, user(res).id));
  };

  const get: RequestHandler = async (req, res) => {
    res.json(jobView(await loadOwnedJob(deps.db, user(res).id, String(req.params.job_id))));
  };

  const cancel: RequestHandler = async (req, res) => {
    const body = parse(CancelRequestSchema, req.body);
    const job = await cancelJob(deps, user(res).id, String(req.params.job_id), body.reason ?? null);
    locals(res).log.info("simulation cancel requested", { job_id: job.id, status: job.status });
    res.json(jobView(job));
  };

  const result: RequestHandler = async (req, res) => {
    const job = await loadOwnedJob(deps.db, user(res).id, String(req.params.job_id));
    res.json(jobResultView(await getResult(deps.db, job)));
  };

  const exportFile: RequestHandler = async (req, res) => {
    const job = await loadOwnedJob(deps.db, user(res).id, String(req.params.job_id));
    const file = await getExport(deps.db, job, String(req.params.format).toLowerCase());
    const ext = { "application/json": "json", "text/markdown": "md", "application/pdf": "pdf" }[file.contentType] ?? "bin";
    res.setHeader("Content-Type", file.contentType.startsWith("text/") ? `${file.contentType}; charset=utf-8` : file.contentType);
    res.setHeader("Content-Disposition", `attachment; filename="${job.id}.${ext}"`);
    res.send(file.content);
  };

  return { create, list, stats, get, cancel, result, exportFile };
}
