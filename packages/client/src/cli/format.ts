import type { SimbatchError } from "../errors.ts";
import type { Batch, BatchList, DryRunResult, Job, JobList, SimulationResult, TemplateList, Usage, UsageHistory } from "../types.ts";

/** Human-readable lines for what the commands print without `--json`. */

export const usd = (n: number | null | undefined): string => (n === null || n === undefined ? "-" : `$${n.toFixed(4)}`);
const pct = (n: number): string => `${Math.round(n)}%`;
const limit = (n: number, money = false): string => (n === -1 ? "unlimited" : money ? usd(n) : String(n));

/** Columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** One line: where a batch is. Used for progress lines, the final line of a wait, and lists. */
export function batchLine(b: Batch): string {
  const p = b.progress;
  const done = p.completed_jobs + p.failed_jobs + p.cancelled_jobs;
  const paused = b.paused ? " (paused)" : "";
  return (
    `${b.batch_id} ${b.status}${paused} ${pct(p.progress_percent)} ${done}/${p.total_jobs} done ` +
    `(completed ${p.completed_jobs}, failed ${p.failed_jobs}, cancelled ${p.cancelled_jobs}, running ${p.running_jobs}) cost ${usd(b.cost.actual_cost_usd)}`
  );
}

export function batchDetails(b: Batch): string {
  const lines = [
    batchLine(b),
    `  created ${b.created_at}  started ${b.started_at ?? "-"}  completed ${b.completed_at ?? "-"}`,
    `  priority ${b.priority}  parallel_jobs ${b.parallel_jobs}  fail_fast ${b.fail_fast}`,
    `  cost: estimated ${usd(b.cost.estimated_cost_usd)}, actual ${usd(b.cost.actual_cost_usd)}, cap ${usd(b.cost.budget_cap_usd)}, tokens ${b.cost.tokens_used}`,
  ];
  lines.push(`  projected cost ${usd(b.projected_cost_usd)}  eta ${b.eta_seconds === null ? "-" : `${Math.round(b.eta_seconds)}s`}`);
  if (b.paused_at) lines.push(`  paused since ${b.paused_at}`);
  if (b.webhook_url) lines.push(`  webhook ${b.webhook_url}`);
  if (b.stop_reason) lines.push(`  stopped: ${b.stop_reason}${b.error_message ? ` (${b.error_message})` : ""}`);
  if (b.cancel_reason) lines.push(`  cancel reason: ${b.cancel_reason}`);
  lines.push(`  jobs: ${b.job_ids.join(" ")}`);
  return lines.join("\n");
}

export function jobRows(jobs: Job[]): string {
  const head = ["JOB", "STATUS", "PROGRESS", "COST", "TEMPLATE", "ERROR"];
  return table([head, ...jobs.map((j) => [j.job_id, j.status, pct(j.progress_percent), usd(j.cost_usd), j.template_id ?? "-", j.error_message ?? ""])]);
}

export function jobDetails(j: Job): string {
  return [
    `${j.job_id} ${j.status} ${pct(j.progress_percent)}${j.current_step ? ` (${j.current_step})` : ""}`,
    `  template ${j.template_id ?? "-"}  entities ${j.entity_count}  timepoints ${j.timepoint_count}  mode ${j.temporal_mode}`,
    `  batch ${j.batch_id ?? "-"}  attempts ${j.attempts}`,
    `  created ${j.created_at}  started ${j.started_at ?? "-"}  completed ${j.completed_at ?? "-"}`,
    `  cost ${usd(j.cost_usd)} (estimated ${usd(j.estimated_cost_usd)}), tokens ${j.tokens_used}`,
    ...(j.error_message ? [`  error: ${j.error_message}`] : []),
    ...(j.cancel_reason ? [`  cancel reason: ${j.cancel_reason}`] : []),
  ].join("\n");
}

export function resultDetails(r: SimulationResult): string {
  const formats = Object.keys(r.narrative_exports).join(", ") || "-";
  return [
    `${r.job.job_id} ${r.job.status}: ${r.entities.length} entities, ${r.timepoints.length} timepoints, ${r.relationships.length} relationships`,
    `  convergence ${r.convergence_score ?? "-"}  robustness ${r.robustness_grade ?? "-"}  exports ${formats}`,
    ...(r.summary ? ["", r.summary] : []),
  ].join("\n");
}

export function batchListText(list: BatchList): string {
  const head = ["BATCH", "STATUS", "PROGRESS", "JOBS", "COST", "CREATED"];
  const rows = list.batches.map((b) => [
    b.batch_id,
    b.status,
    pct(b.progress.progress_percent),
    String(b.progress.total_jobs),
    usd(b.cost.actual_cost_usd),
    b.created_at,
  ]);
  const pages = Math.max(1, Math.ceil(list.total / list.page_size));
  return `${table([head, ...rows])}\npage ${list.page} of ${pages} (${list.total} batches)`;
}

export function jobListText(list: JobList): string {
  const pages = Math.max(1, Math.ceil(list.total / list.page_size));
  return `${jobRows(list.jobs)}\npage ${list.page} of ${pages} (${list.total} jobs)`;
}

export function dryRunText(d: DryRunResult): string {
  return [
    `dry run: admissible, nothing written`,
    `  ${d.total_jobs} jobs, estimated ${usd(d.estimated_cost_usd)} (${d.job_estimates_usd.map(usd).join(", ")})`,
    `  after this batch: simulations remaining ${limit(d.simulations_remaining)}, cost remaining ${limit(d.cost_remaining_usd, true)}`,
  ].join("\n");
}

export function usageText(u: Usage): string {
  return [
    `${u.user_id} (${u.tier}) period ${u.period}, ${u.days_remaining} days remaining`,
    `  api calls    ${u.api_calls_used} of ${limit(u.api_calls_limit)}`,
    `  simulations  ${u.simulations_used} of ${limit(u.simulations_limit)}`,
    `  cost         ${usd(u.cost_used_usd)} of ${limit(u.cost_limit_usd, true)}`,
    `  tokens       ${u.tokens_used}`,
    `  max batch    ${u.max_batch_size}`,
    ...(u.quota_exceeded_reason ? [`  ${u.quota_exceeded_reason}`] : []),
  ].join("\n");
}

export function usageHistoryText(h: UsageHistory): string {
  const head = ["PERIOD", "API CALLS", "RUN", "COMPLETED", "FAILED", "COST", "TOKENS"];
  const rows = h.history.map((p) => [
    p.period,
    String(p.api_calls),
    String(p.simulations_run),
    String(p.simulations_completed),
    String(p.simulations_failed),
    usd(p.cost_usd),
    String(p.tokens_used),
  ]);
  return `${usageText(h.current)}\n\n${rows.length ? table([head, ...rows]) : "no usage in past periods"}`;
}

export function templatesText(t: TemplateList): string {
  const head = ["TEMPLATE", "TIER", "ENTITIES", "TIMEPOINTS", "MODE", "EST. COST", "NAME"];
  const rows = t.templates.map((x) => [
    x.template_id,
    x.tier,
    String(x.default_entity_count),
    String(x.default_timepoint_count),
    x.default_temporal_mode,
    usd(x.estimated_cost_usd),
    x.name,
  ]);
  return `${table([head, ...rows])}\n${t.total} templates; categories: ${t.categories.join(", ")}`;
}

/** What stderr says about an API error: its code, status and message, then the fields that help. */
export function errorText(err: SimbatchError): string {
  const status = err.status === null ? "" : ` (HTTP ${err.status})`;
  const lines = [`error: ${err.code}${status}: ${err.message}`];
  if (Array.isArray(err.detail) && err.detail.length > 1) {
    for (const d of err.detail as { path?: string; message?: string }[]) lines.push(`  ${d.path || "(body)"}: ${d.message ?? JSON.stringify(d)}`);
  }
  const limits = Object.entries(err).filter(([k]) => !["status", "code", "requestId", "detail", "retryAfter", "body", "name"].includes(k));
  if (limits.length) lines.push(`  ${limits.map(([k, v]) => `${k}=${String(v)}`).join(" ")}`);
  if (err.retryAfter !== null) lines.push(`  retry after ${err.retryAfter}s`);
  if (err.requestId) lines.push(`  request id ${err.requestId}`);
  return lines.join("\n");
}
