import { loadBatchAggregate, loadOwnedBatch, loadOwnedJob, rotateWebhookSecret, webhookSecret } from "@simbatch/core";
import { AppError } from "@simbatch/errors";
import type { RequestHandler, Response } from "express";
import type { ApiDeps } from "../deps.ts";
import { user } from "../http/auth.ts";
import { locals } from "../http/request-context.ts";
import type { LiveHub } from "../live/hub.ts";

/**
 * Live progress (SSE) and the webhook secret. A stream is opened only after the
 * owner check (403/404 as JSON) and the per-user stream cap (429): from the 200
 * on, the response is an event stream.
 */
export function liveHandlers(deps: ApiDeps, hub: LiveHub) {
  /** Takes a stream slot or throws 429; the slot is released when the stream closes. */
  async function slot(res: Response): Promise<string> {
    const u = user(res);
    const id = hub.newStreamId();
    if (!(await hub.acquire(u.id, id))) {
      throw new AppError("RateLimitExceeded", {
        message: `At most ${hub.maxStreamsPerUser} live streams may be open per user; close one first`,
        fields: { tier: u.tier, limit: hub.maxStreamsPerUser },
        retryAfter: 5,
      });
    }
    return id;
  }

  const batchEvents: RequestHandler = async (req, res) => {
    const u = user(res);
    const batch = await loadBatchAggregate(deps.db, await loadOwnedBatch(deps.db, u.id, String(req.params.batch_id)));
    const stream = hub.open(res, u.id, await slot(res), req.header("last-event-id"));
    locals(res).log.info("batch stream opened", { batch_id: batch.batch.id });
    await hub.serveBatch(stream, batch).catch((err) => streamFailed(res, err));
  };

  const jobEvents: RequestHandler = async (req, res) => {
    const u = user(res);
    const job = await loadOwnedJob(deps.db, u.id, String(req.params.job_id));
    const stream = hub.open(res, u.id, await slot(res), req.header("last-event-id"));
    locals(res).log.info("job stream opened", { job_id: job.id });
    await hub.serveJob(stream, job).catch((err) => streamFailed(res, err));
  };

  /** After the 200 nothing can become an error response: the stream ends and the client reconnects. */
  function streamFailed(res: Response, err: unknown): void {
    locals(res).log.warn("live stream failed", { error: String(err) });
    res.end();
  }

  const getSecret: RequestHandler = async (_req, res) => {
    res.json({ secret: await webhookSecret(deps.db, user(res).id) });
  };

  const rotateSecret: RequestHandler = async (_req, res) => {
    const secret = await rotateWebhookSecret(deps.db, user(res).id);
    locals(res).log.info("webhook secret rotated");
    res.json({ secret });
  };

  return { batchEvents, jobEvents, getSecret, rotateSecret };
}
