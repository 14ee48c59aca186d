import type { DashboardSnapshot } from "@simbatch/core";
import { renderDashboardPage } from "../src/views/dashboard-page.ts";

const snapshot = (over: Partial<DashboardSnapshot> = {}): DashboardSnapshot => ({
  at: "2026-11-30T12:00:00.000Z",
  operations: {
    jobs: { PENDING: 3, RUNNING: 1, COMPLETED: 10, FAILED: 1, CANCELLED: 0 },
    waiting_in_postgres: 2,
    released_not_started: 1,
    batches_open: 1,
    queue: { waiting: 0, prioritized: 1, active: 1, completed: 10, failed: 1, delayed: 0 },
    workers: { live: 1, capacity: 4 },
    events: { backlog: 5, unacknowledged: 0, dead_lettered: 0, oldest_age_seconds: 2.5 },
    waiting_for_worker_slot: 1,
    oldest_waiting_age_seconds: 75,
    oldest_released_age_seconds: 1,
    charged_micros: 140_000,
  },
  waiting: { total: 2, oldest_age_s: 75, by_user_priority: [{ user_id: "<b>eve</b>", priority: 90, jobs: 2, oldest_age_s: 75 }], groups_left_out: 0 },
  workers: { live: 1, capacity: 4, busy_slots: 2, list: [{ id: "worker-1-abc", concurrency: 4, running: 1 }], running_elsewhere: 0 },
  events: { backlog: 5, unacknowledged: 0, dead_lettered: 0, oldest_age_seconds: 2.5, reconciler_lag_ms: 2_500 },
  batches: {
    open_by_status: { RUNNING: 1 },
    open: [
      {
        batch_id: "batch_0123456789ab",
        user_id: "alice",
        status: "RUNNING",
        priority: 60,
        total_jobs: 4,
        waiting: 2,
        released: 1,
        running: 1,
        completed: 0,
        failed: 0,
        cancelled: 0,
        progress_percent: 12.5,
        cost_usd: 0.14,
        budget_cap_usd: null,
        stop_reason: null,
        age_s: 3_700,
      },
    ],
  },
  spend: {
    period: "2026-11",
    cost_usd: 0.000012,
    tokens: 12_345,
    simulations: 15,
    jobs_completed: 10,
    jobs_failed: 1,
    top_users: [{ user_id: "alice", cost_usd: 2, simulations: 15 }],
  },
  ...over,
});

const render = (snap = snapshot()) =>
  renderDashboardPage(snap, { nonce: "n0nce", dataUrl: "/admin/dashboard/data", pollMs: 1500, queuesUrl: "/admin/queues/" });
const cell = (html: string, row: string, col: string) =>
  new RegExp(`<tr data-row="${row}">.*?<td data-col="${col}"[^>]*>(?:<progress[^>]*></progress> )?<span>([^<]*)</span>`).exec(html)?.[1];

describe("the dashboard page", () => {
  it("renders every figure formatted, in place for the script to update", () => {
    const html = render();
    expect(cell(html, "batch_0123456789ab", "cost_usd")).toBe("$0.14");
    expect(cell(html, "batch_0123456789ab", "progress_percent")).toBe("12.5%");
    expect(cell(html, "batch_0123456789ab", "age_s")).toBe("1 h 1 m");
    expect(cell(html, "batch_0123456789ab", "budget_cap_usd")).toBe("\u2014");
    expect(cell(html, "alice", "cost_usd")).toBe("$2.00");
    expect(html).toContain(`<dd data-k="spend.cost_usd" data-fmt="usd">$0.000012</dd>`);
    expect(html).toContain(`<dd data-k="spend.tokens" data-fmt="int">12,345</dd>`);
    expect(html).toContain(`<dd data-k="events.reconciler_lag_ms" data-fmt="ms">2.5 s</dd>`);
    expect(html).toContain(`<dd data-k="waiting.oldest_age_s" data-fmt="dur">1 m 15 s</dd>`);
    expect(html).toContain(`<progress max="100" value="12.5"></progress>`);
  });

  it("escapes what comes from data", () => {
    const html = render();
    expect(html).not.toContain("<b>eve</b>");
    expect(html).toContain(`<tr data-row="&#60;b&#62;eve&#60;/b&#62;">`);
  });

  it("says so when a table is empty", () => {
    const html = render(snapshot({ workers: { live: 0, capacity: 0, busy_slots: 0, list: [], running_elsewhere: 0 } }));
    expect(html).toContain("No live workers");
  });

  it("ships a script that parses, polls the data URL, and carries the nonce with the style", () => {
    const html = render();
    const scripts = [...html.matchAll(/<script nonce="n0nce">([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(1);
    expect(() => new Function(scripts[0]!)).not.toThrow();
    expect(scripts[0]).toContain(`fetch("/admin/dashboard/data"`);
    expect(scripts[0]).toContain("setTimeout(poll, 1500)");
    expect(html).toContain(`<style nonce="n0nce">`);
    // The page's formatter is the server's: run it in the page's language and compare.
    const fmt = new Function(`${/(function fmt[\s\S]*?\n})/.exec(scripts[0]!)![1]}; return fmt;`)() as (k: string, v: unknown) => string;
    expect([fmt("usd", 0.14), fmt("usd", 0.000012), fmt("usd", 2), fmt("dur", 3_700), fmt("ms", 2_500), fmt("int", 12_345)]).toEqual([
      "$0.14",
      "$0.000012",
      "$2.00",
      "1 h 1 m",
      "2.5 s",
      "12,345",
    ]);
  });
});
