import type { Redis } from "./redis.ts";

/**
 * Upper bounds (seconds) of the job-duration histogram's buckets: a step of the
 * built-in engine takes `SIM_STEP_MS` (300 ms by default), an LLM-backed run
 * minutes.
 */
export const JOB_DURATION_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;

/** One job that ended after it ran, as a reconciler applied it. */
export interface JobOutcome {
  /** The job's template, or null for a job described without one. */
  template: string | null;
  status: "COMPLETED" | "FAILED" | "CANCELLED";
  /** From the job's first start to its end. */
  durationSeconds: number;
}

export interface JobOutcomeTotals {
  /** Jobs ended per template and status. */
  outcomes: { template: string; status: string; count: number }[];
  /** Durations of completed jobs per template: counts per bucket (not cumulative), the +Inf overflow last. */
  durations: { template: string; buckets: number[]; sum: number; count: number }[];
}

/**
 * Every write pushes the hash's expiry out, as the event stream's does: only a
 * deployment where no job has ended for a week loses its counters (a counter
 * reset to Prometheus).
 */
export const JOB_METRICS_TTL_MS = 7 * 24 * 3600 * 1000;

/** The label a job without a template is counted under. */
export const NO_TEMPLATE = "none";

/**
 * Counters of job outcomes and completed-job durations per template, kept in one
 * Redis hash so any API process can serve them at scrape time (the jobs end in
 * reconciler processes, which Prometheus does not scrape). Fields:
 * `n|<status>|<template>` (ended jobs), `b|<bucket index>|<template>`,
 * `s|<template>` and `c|<template>` (durations of completed jobs: per bucket,
 * sum, count). Templates come from the catalog, so the fields are bounded.
 */
export class JobMetrics {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  /** Adds the outcomes of one applied read: one MULTI, so a scrape never sees half of it. */
  async record(outcomes: JobOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    const incr = new Map<string, number>();
    const sums = new Map<string, number>();
    const add = (field: string, n: number) => incr.set(field, (incr.get(field) ?? 0) + n);
    for (const o of outcomes) {
      const template = o.template ?? NO_TEMPLATE;
      add(`n|${o.status}|${template}`, 1);
      if (o.status !== "COMPLETED") continue;
      const seconds = Math.max(0, o.durationSeconds);
      const bucket = JOB_DURATION_BUCKETS.findIndex((le) => seconds <= le);
      add(`b|${bucket < 0 ? JOB_DURATION_BUCKETS.length : bucket}|${template}`, 1);
      add(`c|${template}`, 1);
      sums.set(`s|${template}`, (sums.get(`s|${template}`) ?? 0) + seconds);
    }
    const multi = this.redis.multi();
    for (const [field, n] of incr) multi.hincrby(this.key, field, n);
    for (const [field, s] of sums) multi.hincrbyfloat(this.key, field, s);
    multi.pexpire(this.key, JOB_METRICS_TTL_MS);
    await multi.exec();
  }

  async read(): Promise<JobOutcomeTotals> {
    return parseJobMetrics(await this.redis.hgetall(this.key));
  }
}

/** Splits `kind|a|rest` at its first two separators (a template id may hold anything after them). */
function split2(field: string): [string, string, string] | null {
  const i = field.indexOf("|");
  const j = field.indexOf("|", i + 1);
  if (i < 0 || j < 0) return null;
  return [field.slice(0, i), field.slice(i + 1, j), field.slice(j + 1)];
}

export function parseJobMetrics(hash: Record<string, string>): JobOutcomeTotals {
  const outcomes: JobOutcomeTotals["outcomes"] = [];
  const durations = new Map<string, JobOutcomeTotals["durations"][number]>();
  const duration = (template: string) => {
    let d = durations.get(template);
    if (!d) {
      d = { template, buckets: new Array<number>(JOB_DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      durations.set(template, d);
    }
    return d;
  };
  for (const [field, raw] of Object.entries(hash)) {
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    if (field.startsWith("s|")) duration(field.slice(2)).sum = value;
    else if (field.startsWith("c|")) duration(field.slice(2)).count = value;
    else {
      const parts = split2(field);
      if (!parts) continue;
      const [kind, a, template] = parts;
      if (kind === "n") outcomes.push({ template, status: a, count: value });
      else if (kind === "b") {
        const i = Number(a);
        if (Number.isInteger(i) && i >= 0 && i <= JOB_DURATION_BUCKETS.length) duration(template).buckets[i] = value;
      }
    }
  }
  return { outcomes, durations: [...durations.values()] };
}
