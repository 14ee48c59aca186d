import type { Http, RequestOptions } from "../http.ts";
import type { Template, TemplateList, Usage, UsageHistory, WebhookSecret } from "../types.ts";

/** `/simulations/batch/usage`: the caller's usage and quota in the current period, and past periods. */
export class UsageApi {
  constructor(private readonly http: Http) {}

  get(opts: RequestOptions = {}): Promise<Usage> {
    return this.http.json({ ...opts, method: "GET", path: "/simulations/batch/usage", idempotent: true });
  }

  /** `periods` 1..24 (API default 6). */
  history(params: { periods?: number } = {}, opts: RequestOptions = {}): Promise<UsageHistory> {
    return this.http.json({ ...opts, method: "GET", path: "/simulations/batch/usage/history", query: { ...params }, idempotent: true });
  }
}

/** `/simulations/templates`: the template catalog. */
export class Templates {
  constructor(private readonly http: Http) {}

  list(params: { category?: string } = {}, opts: RequestOptions = {}): Promise<TemplateList> {
    return this.http.json({ ...opts, method: "GET", path: "/simulations/templates", query: { ...params }, idempotent: true });
  }

  /** By catalog id (`showcase/board_meeting`): each part is encoded, the `/` between them kept. */
  get(templateId: string, opts: RequestOptions = {}): Promise<Template> {
    const id = templateId.split("/").map(encodeURIComponent).join("/");
    return this.http.json({ ...opts, method: "GET", path: `/simulations/templates/${id}`, idempotent: true });
  }
}

/** `/webhooks/secret`: the key the caller's batch webhooks are signed with. */
export class Webhooks {
  constructor(private readonly http: Http) {}

  /** Created on first request, stable after. */
  secret(opts: RequestOptions = {}): Promise<WebhookSecret> {
    return this.http.json({ ...opts, method: "GET", path: "/webhooks/secret", idempotent: true });
  }

  /** A new secret; not retried after a lost connection (a second rotation would replace the first's). */
  rotateSecret(opts: RequestOptions = {}): Promise<WebhookSecret> {
    return this.http.json({ ...opts, method: "POST", path: "/webhooks/secret/rotate", idempotent: false });
  }
}
