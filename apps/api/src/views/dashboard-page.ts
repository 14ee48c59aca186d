import type { DashboardSnapshot } from "@simbatch/core";

/**
 * The operators' dashboard: one HTML page rendered here with the current
 * snapshot (readable without scripts), plus a small inline script that polls
 * the JSON of the same snapshot and rewrites the numbers and tables in place.
 * No front-end build. Values reach the page as text only (escaped here,
 * `textContent` in the script), and a per-response nonce lets the CSP allow
 * exactly this page's own style and script.
 */

type Fmt = "text" | "int" | "usd" | "pct" | "dur" | "ms";
interface Column {
  key: string;
  label: string;
  fmt: Fmt;
}
interface Table {
  id: string;
  /** Path of the row array in the snapshot. */
  rows: string;
  /** Row field whose value marks the row (data-row), so a test or a reader can find it. */
  rowKey: string;
  columns: Column[];
  empty: string;
}

const col = (key: string, label: string, fmt: Fmt = "int"): Column => ({ key, label, fmt });

const TABLES: Table[] = [
  {
    id: "batches",
    rows: "batches.open",
    rowKey: "batch_id",
    empty: "No unfinished batches",
    columns: [
      col("batch_id", "Batch", "text"),
      col("user_id", "User", "text"),
      col("status", "Status", "text"),
      col("priority", "Priority"),
      col("progress_percent", "Progress", "pct"),
      col("waiting", "Waiting"),
      col("released", "Released"),
      col("running", "Running"),
      col("completed", "Completed"),
      col("failed", "Failed"),
      col("cancelled", "Cancelled"),
      col("total_jobs", "Total"),
      col("cost_usd", "Cost", "usd"),
      col("budget_cap_usd", "Budget cap", "usd"),
      col("stop_reason", "Stop reason", "text"),
      col("age_s", "Age", "dur"),
    ],
  },
  {
    id: "waiting",
    rows: "waiting.by_user_priority",
    rowKey: "user_id",
    empty: "Nothing waits in Postgres",
    columns: [col("user_id", "User", "text"), col("priority", "Priority"), col("jobs", "Jobs waiting"), col("oldest_age_s", "Oldest waiting", "dur")],
  },
  {
    id: "workers",
    rows: "workers.list",
    rowKey: "id",
    empty: "No live workers",
    columns: [col("id", "Worker", "text"), col("concurrency", "Concurrency"), col("running", "Running (BullMQ active)")],
  },
  {
    id: "spenders",
    rows: "spend.top_users",
    rowKey: "user_id",
    empty: "No spending this period",
    columns: [col("user_id", "User", "text"), col("cost_usd", "Cost", "usd"), col("simulations", "Simulations")],
  },
];

const STATS: { title: string; items: [path: string, label: string, fmt: Fmt][] }[] = [
  {
    title: "Capacity",
    items: [
      ["workers.live", "live workers", "int"],
      ["workers.capacity", "slots (summed concurrency)", "int"],
      ["workers.busy_slots", "slots busy (released or running)", "int"],
      ["operations.jobs.RUNNING", "jobs running", "int"],
      ["workers.running_elsewhere", "active on workers gone", "int"],
    ],
  },
  {
    title: "Waiting",
    items: [
      ["waiting.total", "jobs waiting in Postgres", "int"],
      ["waiting.oldest_age_s", "oldest waiting", "dur"],
      ["operations.released_not_started", "released, not started", "int"],
      ["operations.batches_open", "open batches", "int"],
    ],
  },
  {
    title: "Events",
    items: [
      ["events.backlog", "backlog (not applied)", "int"],
      ["events.reconciler_lag_ms", "reconciler lag", "ms"],
      ["events.unacknowledged", "read, not acknowledged", "int"],
      ["events.dead_lettered", "dead-lettered", "int"],
    ],
  },
  {
    title: "Spend this period",
    items: [
      ["spend.period", "period", "text"],
      ["spend.cost_usd", "cost", "usd"],
      ["spend.tokens", "tokens", "int"],
      ["spend.simulations", "simulations counted", "int"],
      ["spend.jobs_completed", "jobs completed", "int"],
      ["spend.jobs_failed", "jobs failed", "int"],
    ],
  },
];

/** Key-value maps shown as small lists (their keys come from the data). */
const MAPS: [path: string, title: string][] = [
  ["batches.open_by_status", "Open batches by status"],
  ["operations.jobs", "Jobs by status"],
  ["operations.queue", "BullMQ simulations queue"],
];

// One formatter in the page's script language; the server runs the same source (see `format` below).
const FORMAT_JS = `function fmt(kind, v) {
  if (v === null || v === undefined) return "\\u2014";
  if (kind === "int") return Number(v).toLocaleString("en-US");
  if (kind === "usd") { const s = Number(v).toFixed(6).replace(/0+$/, ""); return "$" + (/\\.\\d?$/.test(s) ? Number(v).toFixed(2) : s); }
  if (kind === "pct") return Number(v).toFixed(1) + "%";
  if (kind === "ms") return v < 1000 ? Math.round(v) + " ms" : (v / 1000).toFixed(1) + " s";
  if (kind === "dur") return v < 60 ? v + " s" : v < 3600 ? Math.floor(v / 60) + " m " + (v % 60) + " s" : Math.floor(v / 3600) + " h " + Math.floor((v % 3600) / 60) + " m";
  return String(v);
}`;
const format = new Function(`${FORMAT_JS}; return fmt;`)() as (kind: Fmt, v: unknown) => string;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const at = (data: unknown, path: string): unknown => path.split(".").reduce<any>((o, k) => (o == null ? undefined : o[k]), data);

function renderTable(t: Table, snap: DashboardSnapshot): string {
  const rows = (at(snap, t.rows) as Record<string, unknown>[]) ?? [];
  const head = t.columns.map((c) => `<th>${esc(c.label)}</th>`).join("");
  const body = rows.length === 0 ? `<tr class="empty"><td colspan="${t.columns.length}">${esc(t.empty)}</td></tr>` : rows.map((r) => renderRow(t, r)).join("");
  return `<table id="${t.id}" data-rows="${t.rows}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function renderRow(t: Table, r: Record<string, unknown>): string {
  const cells = t.columns.map((c) => {
    const text = esc(format(c.fmt, r[c.key]));
    const bar = c.fmt === "pct" ? `<progress max="100" value="${Number(r[c.key]) || 0}"></progress> ` : "";
    return `<td data-col="${c.key}" class="${c.fmt}">${bar}<span>${text}</span></td>`;
  });
  return `<tr data-row="${esc(String(r[t.rowKey]))}">${cells.join("")}</tr>`;
}

function renderMap(path: string, title: string, snap: DashboardSnapshot): string {
  const entries = Object.entries((at(snap, path) as Record<string, number>) ?? {});
  const items = entries.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(format("int", v))}</dd>`).join("");
  return `<section class="card"><h2>${esc(title)}</h2><dl class="map" data-map="${path}">${items || "<dt>none</dt><dd></dd>"}</dl></section>`;
}

export function renderDashboardPage(snap: DashboardSnapshot, opts: { nonce: string; dataUrl: string; pollMs: number; queuesUrl: string }): string {
  const stats = STATS.map(
    (s) =>
      `<section class="card"><h2>${esc(s.title)}</h2><dl>${s.items
        .map(([p, label, f]) => `<dt>${esc(label)}</dt><dd data-k="${p}" data-fmt="${f}">${esc(format(f, at(snap, p)))}</dd>`)
        .join("")}</dl></section>`,
  ).join("");
  const maps = MAPS.map(([p, t]) => renderMap(p, t, snap)).join("");
  const tables = TABLES.map((t) => `<section class="wide"><h2>${esc(tableTitle(t.id))}</h2>${renderTable(t, snap)}</section>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>simbatch operations</title>
<style nonce="${opts.nonce}">${CSS}</style></head>
<body>
<header><h1>simbatch operations</h1><nav><a href="${esc(opts.queuesUrl)}">BullMQ queues</a></nav>
<p class="status">snapshot <time id="updated" data-at="${esc(snap.at)}">${esc(snap.at)}</time> <span id="state">live</span></p></header>
<main><div class="cards">${stats}${maps}</div>${tables}</main>
<script nonce="${opts.nonce}">${script(opts)}</script>
</body></html>`;
}

const tableTitle = (id: string) =>
  ({
    batches: "Unfinished batches (oldest first)",
    waiting: "Waiting in Postgres by user and priority",
    workers: "Workers",
    spenders: "Top spenders this period",
  })[id] ?? id;

const script = (opts: { dataUrl: string; pollMs: number }) => `"use strict";
${FORMAT_JS}
const TABLES = ${JSON.stringify(TABLES)};
const at = (o, path) => path.split(".").reduce((x, k) => (x == null ? undefined : x[k]), o);
function cell(c, r) {
  const td = document.createElement("td");
  td.dataset.col = c.key; td.className = c.fmt;
  if (c.fmt === "pct") { const p = document.createElement("progress"); p.max = 100; p.value = Number(r[c.key]) || 0; td.append(p, " "); }
  const span = document.createElement("span"); span.textContent = fmt(c.fmt, r[c.key]); td.append(span);
  return td;
}
function render(snap) {
  for (const el of document.querySelectorAll("[data-k]")) el.textContent = fmt(el.dataset.fmt, at(snap, el.dataset.k));
  for (const dl of document.querySelectorAll("dl[data-map]")) {
    const entries = Object.entries(at(snap, dl.dataset.map) || {});
    dl.replaceChildren(...entries.flatMap(([k, v]) => { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = fmt("int", v); return [dt, dd]; }));
  }
  for (const t of TABLES) {
    const body = document.querySelector("#" + t.id + " tbody");
    const rows = at(snap, t.rows) || [];
    if (rows.length === 0) { const tr = document.createElement("tr"); tr.className = "empty"; const td = document.createElement("td"); td.colSpan = t.columns.length; td.textContent = t.empty; tr.append(td); body.replaceChildren(tr); continue; }
    body.replaceChildren(...rows.map((r) => { const tr = document.createElement("tr"); tr.dataset.row = String(r[t.rowKey]); tr.append(...t.columns.map((c) => cell(c, r))); return tr; }));
  }
  const updated = document.getElementById("updated"); updated.textContent = snap.at; updated.dataset.at = snap.at;
}
const state = document.getElementById("state");
async function poll() {
  try {
    const res = await fetch(${JSON.stringify(opts.dataUrl)}, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    render(await res.json());
    state.textContent = "live"; state.className = "";
  } catch (err) {
    state.textContent = "stale (" + err.message + ")"; state.className = "stale";
  } finally {
    setTimeout(poll, ${opts.pollMs});
  }
}
setTimeout(poll, ${opts.pollMs});`;

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:1rem;padding:.8rem 1.2rem;background:#1d2330;color:#fff}
header h1{font-size:1.1rem;margin:0}header a{color:#9cc3ff}.status{margin:0 0 0 auto;font-size:.85rem;opacity:.85}
#state{color:#7be08a}#state.stale{color:#ff9b8a}
main{padding:1rem 1.2rem}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:.8rem}
.card,.wide{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.6rem .8rem}.wide{margin-top:.8rem;overflow-x:auto}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:#5a6372;margin:0 0 .4rem}
dl{display:grid;grid-template-columns:1fr auto;gap:.15rem .8rem;margin:0}dt{color:#5a6372}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}th,td{padding:.25rem .4rem;border-bottom:1px solid #eef0f3;text-align:right;white-space:nowrap}
th:first-child,td.text{text-align:left}td.text{font-family:ui-monospace,monospace;font-size:.85em}tr.empty td{text-align:left;color:#8a93a3}
progress{width:4rem;vertical-align:middle}`;
