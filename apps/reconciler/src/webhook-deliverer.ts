import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import {
  BlockedTargetError,
  guardedLookup,
  isPublicAddress,
  loadBatchAggregate,
  beginDelivery,
  finishDelivery,
  signatureHeader,
  signingSecrets,
  WEBHOOK_MAX_ATTEMPTS,
  type CoreDeps,
} from "@simbatch/core";
import type { Redis, WebhookJobData } from "@simbatch/queue";
import { webhookEventView } from "@simbatch/views";

export interface WebhookDelivererOptions {
  deps: CoreDeps;
  /** A dedicated connection for the queue's consumer. */
  connection: Redis;
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS. */
  allowPrivate: boolean;
  /** A receiver must answer within this (contract: 10 s). */
  timeoutMs: number;
  concurrency: number;
}

interface Answer {
  statusCode: number | null;
  error: string | null;
}

/**
 * Delivers batch-end webhooks from their BullMQ queue: renders the event (the
 * batch as the API shows it), signs it per Standard Webhooks with the owner's
 * secrets in force, POSTs it, and logs every attempt. A non-2xx answer, a
 * timeout, a connection error or a refused target fails the attempt, and BullMQ
 * retries it with exponential backoff up to WEBHOOK_MAX_ATTEMPTS: a receiver that
 * keeps failing only ever holds this queue's slots.
 */
export class WebhookDeliverer {
  private worker: ReturnType<CoreDeps["webhooks"]["consume"]> | null = null;

  constructor(private readonly opts: WebhookDelivererOptions) {}

  start(): void {
    this.worker = this.opts.deps.webhooks.consume(this.opts.connection, (data) => this.deliver(data), this.opts.concurrency);
    this.worker.on("error", (err) => this.opts.deps.logger.warn("webhook consumer error", { error: err.message }));
  }

  async deliver(data: WebhookJobData): Promise<void> {
    const { deps } = this.opts;
    const batch = await deps.db.batch.findUnique({ where: { id: data.batchId } });
    if (!batch?.webhookUrl) return; // nothing to announce any more
    const body = JSON.stringify(webhookEventView(data.type, await loadBatchAggregate(deps.db, batch), data.createdAt));
    const now = deps.clock.now();
    const timestamp = Math.floor(now.getTime() / 1000);
    const secrets = await signingSecrets(deps.db, batch.ownerId, now);
    const headers = {
      "content-type": "application/json",
      "user-agent": "simbatch-webhooks/1",
      "webhook-id": data.webhookId,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signatureHeader(secrets, data.webhookId, timestamp, body),
    };
    // The attempt is in the log before the POST leaves: a stop mid-flight leaves a row that says so.
    const attempt = await beginDelivery(deps.db, { webhookId: data.webhookId, batchId: data.batchId, type: data.type });
    if (attempt === null) {
      deps.logger.info("webhook already delivered or out of attempts; nothing sent", { webhook_id: data.webhookId, batch_id: data.batchId });
      return;
    }
    const answer = await this.post(batch.webhookUrl, body, headers);
    const delivered = answer.statusCode !== null && answer.statusCode >= 200 && answer.statusCode < 300;
    await finishDelivery(deps.db, {
      webhookId: data.webhookId,
      attempt,
      statusCode: answer.statusCode,
      error: delivered ? null : (answer.error ?? `receiver answered ${answer.statusCode}`),
      delivered,
    });
    const log = { webhook_id: data.webhookId, batch_id: data.batchId, attempt, status_code: answer.statusCode, request_id: batch.requestId };
    if (delivered) {
      deps.logger.info("webhook delivered", log);
      return;
    }
    if (attempt >= WEBHOOK_MAX_ATTEMPTS) {
      deps.logger.error("webhook delivery gave up", { ...log, error: answer.error });
      return;
    }
    deps.logger.warn("webhook delivery failed; retrying", { ...log, error: answer.error });
    throw new Error(answer.error ?? `receiver answered ${answer.statusCode}`);
  }

  /** One POST, no redirects followed; the answer's body is read and dropped. */
  private post(url: string, body: string, headers: Record<string, string>): Promise<Answer> {
    const target = new URL(url);
    const host = target.hostname.replace(/^\[|\]$/g, "");
    // Names are checked by the lookup on every resolved address; literal addresses here.
    if (!this.opts.allowPrivate && (target.protocol !== "https:" || isLiteralPrivate(host))) {
      return Promise.resolve({ statusCode: null, error: `refused target ${target.protocol}//${target.host}: only public https targets are allowed` });
    }
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise<Answer>((resolve) => {
      const req = send(
        target,
        {
          method: "POST",
          headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
          lookup: guardedLookup(this.opts.allowPrivate) as never,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ statusCode: res.statusCode ?? null, error: null }));
          res.on("error", (err) => resolve({ statusCode: res.statusCode ?? null, error: err.message }));
        },
      );
      req.on("error", (err: Error) => {
        const error =
          err.name === "AbortError" || err.name === "TimeoutError"
            ? `no answer within ${this.opts.timeoutMs} ms`
            : err instanceof BlockedTargetError
              ? err.message
              : `connection failed: ${err.message}`;
        resolve({ statusCode: null, error });
      });
      req.end(body);
    });
  }

  async stop(): Promise<void> {
    await this.worker?.close().catch(() => undefined);
    this.opts.connection.disconnect();
  }
}

/** A literal IP target that is not public (names are checked at lookup). */
const isLiteralPrivate = (host: string): boolean => /^[\d.]+$|:/.test(host) && !isPublicAddress(host);
