import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { TestEnv } from "@simbatch/testing";
import { freePort, run, stopAll, waitListening, type Proc } from "../support/processes.ts";

/**
 * The dashboards in a real browser: Debian's chromium driven by playwright-core
 * (no browser download; CHROMIUM_PATH overrides /usr/bin/chromium; .ci/run
 * installs it), against the three roles as real processes. Without credentials
 * the page is 401; with the admin token as HTTP Basic password it shows a
 * running batch whose numbers move as the page polls, and the queue board lists
 * the simulations queue. Screenshots go to test-artifacts/ (git-ignored).
 */
const ADMIN = "browser-admin-token-0123456789abcdef0123456789";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = path.resolve(__dirname, "../../test-artifacts");

// The page's document, for the predicates that run there (this file compiles without the DOM library).
interface PageElement {
  textContent: string | null;
}
declare const document: { querySelector(sel: string): PageElement | null; querySelectorAll(sel: string): Iterable<PageElement> };

describe("admin dashboards in chromium", () => {
  const env = new TestEnv();
  const procs: Proc[] = [];
  let url: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
    await env.setup();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const base = {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      REDIS_PREFIX: env.prefix,
      SIMBATCH_TEST_TEMPLATES: "1",
      SIM_STEP_MS: "300",
      LOG_LEVEL: "info",
    };
    const api = run("apps/api/src/main.ts", { ...base, PORT: String(port), ADMIN_TOKEN: ADMIN });
    procs.push(api, run("apps/reconciler/src/main.ts", base), run("apps/worker/src/main.ts", { ...base, WORKER_CONCURRENCY: "2" }));
    await waitListening(api, port);
    // Root (CI containers) cannot use chromium's sandbox.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 90_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await stopAll(procs);
    await env.teardown();
  });

  const context = async (credentials?: { username: string; password: string }) => {
    const c = await browser.newContext({ httpCredentials: credentials, viewport: { width: 1600, height: 1000 } });
    contexts.push(c);
    return c;
  };

  it("answers 401 with a Basic challenge to a browser without credentials or with a wrong token", async () => {
    // Chromium turns a refused challenge into a failed navigation (net::ERR_INVALID_AUTH_CREDENTIALS); the server's answers are still seen.
    const answers = async (credentials: { username: string; password: string } | undefined, p: string) => {
      const page = await (await context(credentials)).newPage();
      const seen: { status: number; challenge: string | null }[] = [];
      page.on("response", (r) => void (r.url() === `${url}${p}` && seen.push({ status: r.status(), challenge: r.headers()["www-authenticate"] ?? null })));
      const loaded = await page.goto(`${url}${p}`).catch((err: Error) => err);
      return { loaded: loaded instanceof Error ? "failed" : loaded?.status(), seen };
    };
    const challenge = { status: 401, challenge: 'Basic realm="simbatch admin", charset="UTF-8"' };
    for (const p of ["/admin/dashboard", "/admin/queues"]) {
      const bare = await answers(undefined, p);
      expect({ p, seen: bare.seen }).toEqual({ p, seen: [challenge] });
      expect(["failed", 401]).toContain(bare.loaded);
      // With credentials the browser answers the challenge with them; a wrong token gets 401 again.
      const wrong = await answers({ username: "admin", password: `x${ADMIN}` }, p);
      expect({ p, seen: wrong.seen }).toEqual({ p, seen: [challenge] });
      expect(["failed", 401]).toContain(wrong.loaded);
    }
  });

  it("shows a running batch's numbers moving, live", async () => {
    const alice = await env.user("browser-alice", "pro");
    const page = await (await context({ username: "operator", password: ADMIN })).newPage();
    const problems: string[] = [];
    page.on("console", (m) => void (m.type() === "error" && problems.push(m.text())));
    page.on("pageerror", (e) => problems.push(e.message));
    expect((await page.goto(`${url}/admin/dashboard`))?.status()).toBe(200);
    await page.waitForSelector("#workers tbody tr[data-row^='worker-']", { timeout: 20_000 });

    const res = await fetch(`${url}/simulations/batch`, {
      method: "POST",
      headers: { "X-API-Key": alice.key, "Content-Type": "application/json" },
      body: JSON.stringify({
        simulations: Array.from({ length: 4 }, () => ({ template_id: "test/scripted", config: { steps: 12, step_ms: 250 } })),
        parallel_jobs: 2,
        priority: 60,
      }),
    });
    expect(res.status).toBe(202);
    const batchId = ((await res.json()) as { batch_id: string }).batch_id;
    const cell = (col: string) => `#batches tr[data-row="${batchId}"] td[data-col="${col}"] span`;

    // The predicates run in the page (functions, not strings: the page's CSP forbids eval).
    const seconds = (n: number) => ({ timeout: n * 1000 });

    // The poll brings the batch in while it runs, without a reload.
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.textContent ?? 0) > 0, cell("running"), seconds(30));
    const first = (await page.textContent(cell("progress_percent"))) ?? "";
    await page.waitForFunction(
      ({ sel, before }) => (document.querySelector(sel)?.textContent ?? before) !== before,
      { sel: cell("progress_percent"), before: first },
      seconds(30),
    );
    // Running jobs show against their worker, and as busy slots.
    await page.waitForFunction(
      () => [...document.querySelectorAll("#workers td[data-col='running'] span")].some((s) => Number(s.textContent) > 0),
      null,
      seconds(30),
    );
    expect(Number(await page.textContent("[data-k='workers.capacity']"))).toBe(2);
    await page.screenshot({ path: path.join(ARTIFACTS, "admin-dashboard.png"), fullPage: true });

    // It runs to the end on the page: completions climb, then the batch leaves the unfinished list and the spend shows it.
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.textContent ?? 0) >= 2, cell("completed"), seconds(60));
    await page.waitForFunction((sel) => document.querySelector(sel) === null, `#batches tr[data-row="${batchId}"]`, seconds(60));
    await page.waitForSelector(`#spenders tr[data-row="browser-alice"]`, { timeout: 30_000 });
    expect(await page.textContent("#state")).toBe("live");
    expect(await page.textContent("[data-k='spend.cost_usd']")).not.toBe("$0.00");
    expect(problems).toEqual([]);
  }, 150_000);

  it("opens the queue board and sees the simulations queue", async () => {
    const page = await (await context({ username: "operator", password: ADMIN })).newPage();
    expect((await page.goto(`${url}/admin/queues`))?.status()).toBe(200);
    await page.getByText("simulations", { exact: true }).first().waitFor({ timeout: 30_000 });
    // The overview's own data call (api/queues) has answered: the queue's card replaces the loading line.
    await page.getByText("Loading...").waitFor({ state: "hidden", timeout: 30_000 });
    expect(await page.getByText("simulations", { exact: true }).count()).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: path.join(ARTIFACTS, "admin-queues.png"), fullPage: true });
    // The board's own data calls went through the same credentials.
    expect(await page.evaluate(async () => (await fetch("/admin/queues/api/queues")).status)).toBe(200);
  }, 60_000);
});
