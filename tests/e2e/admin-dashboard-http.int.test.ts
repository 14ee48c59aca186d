import request from "supertest";
import { createApp } from "@simbatch/api";
import type { DashboardSnapshot } from "@simbatch/core";
import { waitFor } from "@simbatch/testing";
import { Stack } from "../support/stack.ts";

/**
 * The dashboards over HTTP (supertest on createApp): who gets in (HTTP Basic
 * with the admin token as password, or Bearer), 401 with a Basic challenge, 404
 * when ADMIN_TOKEN is unset, the queue board mounted with its assets, and the
 * contract's 404/405 rules around it. The browser test is admin-dashboard.int.test.ts.
 */
const ADMIN = "dash-admin-token-0123456789abcdef0123456789";
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const BROWSER_PATHS = [
  "/admin/queues",
  "/admin/queues/",
  "/admin/queues/api/queues",
  "/admin/queues/static/nope.js",
  "/admin/dashboard",
  "/admin/dashboard/data",
];

describe("admin dashboards over HTTP", () => {
  const stack = new Stack({ workers: [], adminToken: ADMIN });
  let key: string;
  let ip = 0;
  // Each test asks from its own address: the failure throttle counts per client IP.
  const http = () => {
    const from = `198.51.100.${++ip}`;
    const agent = stack.http();
    return {
      get: (path: string) => agent.get(path).set("X-Forwarded-For", from),
      post: (path: string) => agent.post(path).set("X-Forwarded-For", from),
      put: (path: string) => agent.put(path).set("X-Forwarded-For", from),
    };
  };

  beforeAll(async () => {
    await stack.start();
    key = (await stack.env.user("dash-alice", "pro")).key;
  });
  afterAll(async () => {
    await stack.stop();
  });

  it("answers 404 on every dashboard path, whatever the credentials, when ADMIN_TOKEN is unset", async () => {
    const app = createApp({ ...stack.deps, config: { ...stack.deps.config, adminToken: undefined } });
    for (const path of BROWSER_PATHS) {
      for (const auth of [undefined, `Bearer ${ADMIN}`, basic("admin", ADMIN)]) {
        const req = request(app).get(path);
        const res = await (auth ? req.set("Authorization", auth) : req);
        expect({ path, auth, status: res.status, error: res.body.error }).toEqual({ path, auth, status: 404, error: "NotFound" });
        expect(res.headers["www-authenticate"]).toBeUndefined();
      }
    }
  });

  it("answers 401 with a Basic challenge without credentials or with a wrong token, on every dashboard path", async () => {
    for (const path of BROWSER_PATHS) {
      for (const auth of [undefined, `Bearer wrong-${ADMIN}`, basic("admin", `wrong-${ADMIN}`), basic(ADMIN, "x"), "Basic !!!", `Token ${ADMIN}`]) {
        const req = http().get(path);
        const res = await (auth ? req.set("Authorization", auth) : req);
        expect({ path, auth, status: res.status, error: res.body.error }).toEqual({ path, auth, status: 401, error: "Unauthorized" });
        expect(res.headers["www-authenticate"]).toBe('Basic realm="simbatch admin", charset="UTF-8"');
      }
    }
  });

  it("lets in HTTP Basic with the token as password (any user name) and Bearer", async () => {
    for (const auth of [basic("admin", ADMIN), basic("", ADMIN), basic("ops", ADMIN), `Bearer ${ADMIN}`]) {
      const page = await http().get("/admin/dashboard").set("Authorization", auth);
      expect({ auth, status: page.status }).toEqual({ auth, status: 200 });
      expect(page.headers["content-type"]).toMatch(/^text\/html/);
      const data = await http().get("/admin/dashboard/data").set("Authorization", auth);
      expect({ auth, status: data.status }).toEqual({ auth, status: 200 });
      const board = await http().get("/admin/queues/api/queues").set("Authorization", auth);
      expect({ auth, status: board.status }).toEqual({ auth, status: 200 });
    }
  });

  it("keeps the admin JSON API on Bearer only, without a browser challenge", async () => {
    const viaBasic = await http().get("/admin/operations").set("Authorization", basic("admin", ADMIN));
    expect(viaBasic.status).toBe(401);
    expect(viaBasic.headers["www-authenticate"]).toBeUndefined();
    expect((await http().get("/admin/operations").set("Authorization", `Bearer ${ADMIN}`)).status).toBe(200);
  });

  it("does not count a browser's bare first request against the failure throttle, but counts wrong credentials", async () => {
    const c = http();
    for (let i = 0; i < 15; i++) expect((await c.get("/admin/dashboard")).status).toBe(401);
    expect((await c.get("/admin/dashboard").set("Authorization", basic("admin", ADMIN))).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await c.get("/admin/dashboard").set("Authorization", basic("admin", `guess-${i}`))).status).toBe(401);
    const throttled = await c.get("/admin/dashboard").set("Authorization", basic("admin", ADMIN));
    expect({ status: throttled.status, error: throttled.body.error }).toEqual({ status: 429, error: "RateLimitExceeded" });
    // The whole admin area is closed to that address, the JSON API included.
    expect((await c.get("/admin/operations").set("Authorization", `Bearer ${ADMIN}`)).status).toBe(429);
  });

  it("serves the queue board with its assets, listing every queue, read-only", async () => {
    const auth = basic("admin", ADMIN);
    const page = await http().get("/admin/queues").set("Authorization", auth);
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["x-powered-by"]).toBeUndefined();
    expect(page.headers["x-request-id"]).toMatch(/^req_/);
    // Every asset the page links to is served under the mount path.
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]*static\/[^"]+)"/g)].map((m) => new URL(m[1]!, "http://x/admin/queues/").pathname);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      const res = await http().get(asset).set("Authorization", auth);
      expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
    }
    const queues = await http().get("/admin/queues/api/queues").set("Authorization", auth);
    const listed = (queues.body as { queues: { name: string; readOnlyMode: boolean }[] }).queues;
    expect(listed.map((q) => q.name)).toEqual(stack.deps.queues.all().map((q) => q.name));
    expect(listed.map((q) => q.name)).toContain("simulations");
    expect(listed.every((q) => q.readOnlyMode)).toBe(true);
    // Changing BullMQ by hand is refused: Postgres decides what is queued.
    const pause = await http().put("/admin/queues/api/queues/simulations/pause").set("Authorization", auth);
    expect(pause.status).toBe(405);
    expect(await stack.deps.queue.queue.isPaused()).toBe(false);
  });

  it("keeps the contract's 404 and 405 around the dashboards", async () => {
    const auth = basic("admin", ADMIN);
    const notFound = async (path: string) => {
      const res = await http().get(path).set("Authorization", auth);
      expect({ path, status: res.status, error: res.body.error }).toEqual({ path, status: 404, error: "NotFound" });
    };
    // What the board does not serve falls through to the JSON 404.
    await notFound("/admin/queues/no/such/page/here.txt");
    await notFound("/admin/queues/static/no-such-asset.js");
    await notFound("/admin/dashboard/nope");
    // Paths match case-sensitively, as every other route.
    await notFound("/ADMIN/QUEUES");
    await notFound("/admin/Queues/api/queues");
    await notFound("/admin/queuesx");
    const post = await http().post("/admin/dashboard").set("Authorization", auth);
    expect({ status: post.status, error: post.body.error, allow: post.headers.allow }).toEqual({ status: 405, error: "MethodNotAllowed", allow: "GET" });
    const postData = await http().post("/admin/dashboard/data").set("Authorization", auth);
    expect(postData.status).toBe(405);
    // An unknown path outside the admin area is unchanged.
    expect((await http().get("/nope")).status).toBe(404);
  });

  it("renders the page with its data, escaped, under a nonce CSP, and polls the same snapshot", async () => {
    const auth = basic("admin", ADMIN);
    const res = await stack.submitBatch(key, {
      simulations: [0, 1, 2].map(() => ({ template_id: "test/scripted", config: { steps: 2 } })),
      parallel_jobs: 2,
      priority: 70,
      metadata: { note: "<script>alert(1)</script>" },
    });
    expect(res.status).toBe(202);
    const batchId = res.body.batch_id as string;
    const page = await http().get("/admin/dashboard").set("Authorization", auth);
    expect(page.headers["cache-control"]).toBe("no-store");
    const csp = String(page.headers["content-security-policy"]);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    // Every script and style element carries the nonce; no inline handlers.
    expect([...page.text.matchAll(/<(script|style)\b([^>]*)>/g)].every((m) => m[2]!.includes(`nonce="${nonce}"`))).toBe(true);
    expect(page.text).not.toMatch(/\son[a-z]+=/);
    expect(page.text).toContain(`<tr data-row="${batchId}">`);
    expect(page.text).toContain("/admin/dashboard/data");

    const data = (await http().get("/admin/dashboard/data").set("Authorization", auth)).body as DashboardSnapshot;
    expect(data.batches.open.find((b) => b.batch_id === batchId)).toMatchObject({ user_id: "dash-alice", status: "PENDING", total_jobs: 3, waiting: 3 });
    expect(data.waiting.by_user_priority).toContainEqual(expect.objectContaining({ user_id: "dash-alice", priority: 70, jobs: 3 }));

    // A user id is data too: it reaches the page as text.
    const withOdd = await stack.submitBatch((await stack.env.user("<b>odd</b>", "pro")).key, { simulations: [{ template_id: "test/scripted" }] });
    expect(withOdd.status).toBe(202);
    const escaped = await http().get("/admin/dashboard").set("Authorization", auth);
    expect(escaped.text).not.toContain("<b>odd</b>");
    expect(escaped.text).toContain("&#60;b&#62;odd&#60;/b&#62;");

    // Once a worker runs them, the batch leaves the open list and the period's spend shows it.
    await stack.addWorker(2);
    const after = await waitFor(
      async () => {
        const d = (await http().get("/admin/dashboard/data").set("Authorization", auth)).body as DashboardSnapshot;
        return d.batches.open.some((b) => b.batch_id === batchId) ? false : d;
      },
      { timeoutMs: 30_000, what: "batch finished on the dashboard" },
    );
    expect(after.spend.top_users.map((u) => u.user_id)).toContain("dash-alice");
    expect(after.spend.cost_usd).toBeGreaterThan(0);
    expect(after.workers.live).toBe(1);
    expect(after.workers.capacity).toBe(2);
  });
});
