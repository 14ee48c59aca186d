import type { Batch, DbOrTx } from "@simbatch/db";
import { usd } from "./deps.ts";

/**
 * GET /simulations/batch/{id}/report (contract: Batch results and the cross-run
 * report). Every statistic is computed by Postgres over the batch's job rows and
 * the few fields it needs from each completed job's stored result
 * (convergence_score, robustness_grade, entities[].name and
 * entities[].final_state.stance), so no result is ever loaded into the API.
 *
 * - jobs: counts by status (pending = PENDING, released or not).
 * - cost_usd.total, tokens_used: the batch row's charged counters, i.e. exactly
 *   the batch's actual_cost_usd and tokens_used (the charges of its finished jobs);
 *   mean, p50, p90 (percentile_cont) and max over the finished jobs' cost, in
 *   micro-dollars, rounded to whole micro-dollars.
 * - duration_seconds (completed_at - started_at), convergence_score, robustness
 *   grades and entities: over COMPLETED jobs (and those of them whose result has
 *   the value).
 * - templates: every job of the batch by template id (description-only jobs have
 *   none and are not listed).
 * - A statistic no job qualifies for is null; counts and histograms are then 0 / {} / [].
 */

export interface BatchReport {
  batch_id: string;
  status: string;
  jobs: { total: number; completed: number; failed: number; cancelled: number; pending: number; running: number };
  cost_usd: { total: number; mean: number | null; p50: number | null; p90: number | null; max: number | null };
  tokens_used: number;
  duration_seconds: { mean: number | null; p50: number | null; p90: number | null; max: number | null };
  convergence_score: { mean: number | null; min: number | null; max: number | null };
  robustness_grades: Record<string, number>;
  templates: Record<string, number>;
  entities: { template_id: string; name: string; runs: number; final_stance: { mean: number | null; min: number | null; max: number | null } }[];
}

type Num = number | string | null;

interface SummaryRow {
  status: string;
  charged_micros: bigint;
  charged_tokens: bigint;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  pending: number;
  running: number;
  cost_mean: Num;
  cost_p50: Num;
  cost_p90: Num;
  cost_max: Num;
  dur_mean: Num;
  dur_p50: Num;
  dur_p90: Num;
  dur_max: Num;
  conv_mean: Num;
  conv_min: Num;
  conv_max: Num;
  grades: Record<string, number> | null;
  templates: Record<string, number> | null;
  entities: { template_id: string; name: string; runs: number; mean: Num; min: Num; max: Num }[] | null;
}

/** numeric / float8 from Postgres (numeric may come back as a string or a Decimal) → number, null kept. */
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** A micro-dollar statistic (possibly fractional, e.g. an interpolated percentile) → USD rounded to the micro-dollar. */
const microsStat = (v: unknown): number | null => (v === null || v === undefined ? null : usd(Math.round(Number(v))));
/**
 * Durations: exact (numeric) from millisecond timestamps; percentiles interpolated as
 * Postgres does. Rounded to the nanosecond, which drops float8 noise (0.20700000000000002)
 * and nothing a millisecond clock could have measured.
 */
const seconds = (v: unknown): number | null => {
  const n = num(v);
  return n === null ? null : Math.round(n * 1e9) / 1e9;
};

export async function batchReport(db: DbOrTx, batch: Batch): Promise<BatchReport> {
  // One statement, one snapshot: the counts, the charges and the statistics agree.
  const [r] = await db.$queryRaw<SummaryRow[]>`
    WITH j AS (
      SELECT j.id, j.status, j.template_id, j.cost_micros, j.tokens_used,
        CASE WHEN j.status = 'COMPLETED' AND j.started_at IS NOT NULL AND j.completed_at IS NOT NULL
          THEN extract(epoch FROM j.completed_at - j.started_at) END AS duration
      FROM simulation_jobs j WHERE j.batch_id = ${batch.id}
    ),
    done AS (
      SELECT j.id, j.template_id, r.result -> 'convergence_score' AS conv, r.result -> 'robustness_grade' AS grade,
        CASE WHEN jsonb_typeof(r.result -> 'entities') = 'array' THEN r.result -> 'entities' ELSE '[]'::jsonb END AS entities
      FROM j JOIN simulation_results r ON r.job_id = j.id
      WHERE j.status = 'COMPLETED'
    ),
    ent AS (
      SELECT d.template_id, d.id AS job_id, COALESCE(e.value ->> 'name', e.value ->> 'entity_id') AS name, e.pos,
        (e.value -> 'final_state' ->> 'stance')::numeric AS stance
      FROM done d CROSS JOIN LATERAL jsonb_array_elements(d.entities) WITH ORDINALITY AS e(value, pos)
      WHERE d.template_id IS NOT NULL AND jsonb_typeof(e.value) = 'object'
        AND jsonb_typeof(e.value -> 'final_state' -> 'stance') = 'number'
        AND COALESCE(e.value ->> 'name', e.value ->> 'entity_id') IS NOT NULL
    ),
    ent_agg AS (
      SELECT template_id, name, count(DISTINCT job_id)::int AS runs, avg(stance)::float8 AS mean, min(stance)::float8 AS min,
        max(stance)::float8 AS max, min(pos) AS pos
      FROM ent GROUP BY template_id, name
    )
    SELECT b.status::text AS status, b.charged_micros, b.charged_tokens,
      (SELECT count(*)::int FROM j) AS total,
      (SELECT count(*)::int FROM j WHERE status = 'COMPLETED') AS completed,
      (SELECT count(*)::int FROM j WHERE status = 'FAILED') AS failed,
      (SELECT count(*)::int FROM j WHERE status = 'CANCELLED') AS cancelled,
      (SELECT count(*)::int FROM j WHERE status = 'PENDING') AS pending,
      (SELECT count(*)::int FROM j WHERE status = 'RUNNING') AS running,
      c.cost_mean, c.cost_p50, c.cost_p90, c.cost_max,
      d.dur_mean, d.dur_p50, d.dur_p90, d.dur_max,
      v.conv_mean, v.conv_min, v.conv_max,
      (SELECT jsonb_object_agg(grade, n ORDER BY grade) FROM (
        SELECT grade #>> '{}' AS grade, count(*)::int AS n FROM done WHERE jsonb_typeof(grade) = 'string' GROUP BY 1) g) AS grades,
      (SELECT jsonb_object_agg(template_id, n ORDER BY template_id) FROM (
        SELECT template_id, count(*)::int AS n FROM j WHERE template_id IS NOT NULL GROUP BY template_id) t) AS templates,
      (SELECT jsonb_agg(jsonb_build_object('template_id', template_id, 'name', name, 'runs', runs, 'mean', mean, 'min', min, 'max', max)
        ORDER BY template_id, pos, name) FROM ent_agg) AS entities
    FROM batches b
    CROSS JOIN LATERAL (
      SELECT avg(cost_micros)::float8 AS cost_mean,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY cost_micros) AS cost_p50,
        percentile_cont(0.9) WITHIN GROUP (ORDER BY cost_micros) AS cost_p90,
        max(cost_micros)::float8 AS cost_max
      FROM j WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
    ) c
    CROSS JOIN LATERAL (
      SELECT avg(duration)::float8 AS dur_mean,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY duration) AS dur_p50,
        percentile_cont(0.9) WITHIN GROUP (ORDER BY duration) AS dur_p90,
        max(duration)::float8 AS dur_max
      FROM j WHERE duration IS NOT NULL
    ) d
    CROSS JOIN LATERAL (
      SELECT avg((conv #>> '{}')::numeric)::float8 AS conv_mean, min((conv #>> '{}')::numeric)::float8 AS conv_min,
        max((conv #>> '{}')::numeric)::float8 AS conv_max
      FROM done WHERE jsonb_typeof(conv) = 'number'
    ) v
    WHERE b.id = ${batch.id}`;
  if (!r) throw new Error(`batch ${batch.id} vanished`);
  return {
    batch_id: batch.id,
    status: r.status,
    jobs: { total: r.total, completed: r.completed, failed: r.failed, cancelled: r.cancelled, pending: r.pending, running: r.running },
    cost_usd: {
      total: usd(r.charged_micros),
      mean: microsStat(r.cost_mean),
      p50: microsStat(r.cost_p50),
      p90: microsStat(r.cost_p90),
      max: microsStat(r.cost_max),
    },
    tokens_used: Number(r.charged_tokens),
    duration_seconds: { mean: seconds(r.dur_mean), p50: seconds(r.dur_p50), p90: seconds(r.dur_p90), max: seconds(r.dur_max) },
    convergence_score: { mean: num(r.conv_mean), min: num(r.conv_min), max: num(r.conv_max) },
    robustness_grades: r.grades ?? {},
    templates: r.templates ?? {},
    entities: (r.entities ?? []).map((e) => ({
      template_id: e.template_id,
      name: e.name,
      runs: e.runs,
      final_stance: { mean: num(e.mean), min: num(e.min), max: num(e.max) },
    })),
  };
}

export const REPORT_CSV_HEADER = [
  "index",
  "job_id",
  "status",
  "template_id",
  "temporal_mode",
  "seed",
  "cost_usd",
  "tokens_used",
  "duration_seconds",
  "convergence_score",
  "robustness_grade",
] as const;

interface CsvRow {
  batch_index: number;
  id: string;
  status: string;
  template_id: string | null;
  temporal_mode: string;
  seed: string | null;
  cost_micros: bigint;
  tokens_used: bigint;
  duration: Num;
  conv: string | null;
  grade: string | null;
}

/** RFC 4180: a field with a comma, a quote or a line break is quoted, quotes doubled. */
export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The CSV report: the header, then one row per job in job_ids order (CRLF line
 * ends, RFC 4180). seed is the seed a completed run used (its result's, derived
 * from the job id when the request gave none), else the job's config.seed; duration_seconds exists for a
 * job that started and ended; convergence_score and robustness_grade for a
 * completed job whose result has them. Only those fields are read from results.
 */
export async function batchReportCsv(db: DbOrTx, batch: Batch): Promise<string> {
  const rows = await db.$queryRaw<CsvRow[]>`
    SELECT j.batch_index, j.id, j.status::text AS status, j.template_id, j.temporal_mode::text AS temporal_mode,
      COALESCE(CASE WHEN jsonb_typeof(r.result -> 'seed') = 'number' THEN r.result ->> 'seed' END,
        CASE WHEN jsonb_typeof(j.config -> 'seed') IN ('number', 'string') THEN j.config ->> 'seed' END) AS seed,
      j.cost_micros, j.tokens_used,
      CASE WHEN j.started_at IS NOT NULL AND j.completed_at IS NOT NULL
        AND j.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN extract(epoch FROM j.completed_at - j.started_at) END AS duration,
      CASE WHEN jsonb_typeof(r.result -> 'convergence_score') = 'number' THEN r.result ->> 'convergence_score' END AS conv,
      CASE WHEN jsonb_typeof(r.result -> 'robustness_grade') = 'string' THEN r.result ->> 'robustness_grade' END AS grade
    FROM simulation_jobs j
    LEFT JOIN simulation_results r ON r.job_id = j.id AND j.status = 'COMPLETED'
    WHERE j.batch_id = ${batch.id}
    ORDER BY j.batch_index`;
  const lines = [REPORT_CSV_HEADER.join(",")];
  for (const r of rows) {
    lines.push(
      [
        r.batch_index,
        r.id,
        r.status,
        r.template_id,
        r.temporal_mode,
        r.seed,
        usd(r.cost_micros),
        Number(r.tokens_used),
        seconds(r.duration),
        r.conv === null ? null : Number(r.conv),
        r.grade,
      ]
        .map(csvField)
        .join(","),
    );
  }
  return `${lines.join("\r\n")}\r\n`;
}

const fmt = (v: number | null, digits = 3): string => (v === null ? "–" : String(Math.round(v * 10 ** digits) / 10 ** digits));
const money = (v: number | null): string => (v === null ? "–" : `$${v.toFixed(6).replace(/0{1,4}$/, "")}`);
/** A table cell: pipes escaped, line breaks flattened. */
const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

/** The report as Markdown: the same figures as the JSON, as headed tables. */
export function reportMarkdown(r: BatchReport): string {
  const out: string[] = [];
  out.push(`# Batch report: ${r.batch_id}`, "", `**Status:** ${r.status}`, "");
  out.push("## Jobs", "", "| total | completed | failed | cancelled | pending | running |", "|---:|---:|---:|---:|---:|---:|");
  out.push(`| ${r.jobs.total} | ${r.jobs.completed} | ${r.jobs.failed} | ${r.jobs.cancelled} | ${r.jobs.pending} | ${r.jobs.running} |`, "");
  out.push("## Cost and duration", "", "| | total | mean | p50 | p90 | max |", "|---|---:|---:|---:|---:|---:|");
  out.push(
    `| cost (USD, finished jobs) | ${money(r.cost_usd.total)} | ${money(r.cost_usd.mean)} | ${money(r.cost_usd.p50)} | ${money(r.cost_usd.p90)} | ${money(r.cost_usd.max)} |`,
  );
  const d = r.duration_seconds;
  out.push(`| duration (s, completed jobs) | | ${fmt(d.mean)} | ${fmt(d.p50)} | ${fmt(d.p90)} | ${fmt(d.max)} |`, "");
  out.push(`**Tokens used:** ${r.tokens_used}`, "");
  out.push("## Convergence and robustness", "");
  const c = r.convergence_score;
  out.push(c.mean === null ? "No completed run has a convergence score." : `Convergence score: mean ${fmt(c.mean)}, min ${fmt(c.min)}, max ${fmt(c.max)}.`, "");
  const grades = Object.entries(r.robustness_grades);
  if (grades.length === 0) out.push("No completed run has a robustness grade.", "");
  else out.push("| grade | runs |", "|---|---:|", ...grades.map(([g, n]) => `| ${cell(g)} | ${n} |`), "");
  out.push("## Templates", "");
  const templates = Object.entries(r.templates);
  if (templates.length === 0) out.push("No job names a template.", "");
  else out.push("| template | jobs |", "|---|---:|", ...templates.map(([t, n]) => `| ${cell(t)} | ${n} |`), "");
  out.push("## Entities: final stance across runs", "");
  if (r.entities.length === 0) out.push("No completed run reports its entities' final stance.", "");
  else {
    out.push("| template | entity | runs | mean | min | max |", "|---|---|---:|---:|---:|---:|");
    for (const e of r.entities) {
      out.push(
        `| ${cell(e.template_id)} | ${cell(e.name)} | ${e.runs} | ${fmt(e.final_stance.mean)} | ${fmt(e.final_stance.min)} | ${fmt(e.final_stance.max)} |`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}
