import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { exportedSeriesNames, promqlMetricNames } from "../support/metric-names.ts";

const ROOT = path.resolve(__dirname, "../..");
const read = (p: string) => readFileSync(path.join(ROOT, p), "utf8");

/** Series Prometheus itself writes for each target, not the service. */
const PROMETHEUS_OWN = new Set(["up"]);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function alertRules(): Rule[] {
  const doc = parse(read("deploy/prometheus/alerts.yml")) as { groups: { name: string; rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}

function dashboard(): { templating: { list: { name: string; type: string; query: string }[] }; panels: Panel[]; uid: string } {
  return JSON.parse(read("deploy/grafana/simbatch-dashboard.json"));
}

const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

describe("PromQL metric names", () => {
  it("reads names out of functions, aggregations, matchers, ranges, subqueries and grouping clauses", () => {
    expect(
      promqlMetricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_seconds_bucket{route!="x(y)", status=~"5.."}[5m]))) > 1 and on (job) up offset 5m',
      ).sort(),
    ).toEqual(["http_seconds_bucket", "up"]);
    expect(promqlMetricNames("deriv(max(a_total)[30m:1m]) > 0 unless b * 1e6 / c_bytes")).toEqual(["a_total", "b", "c_bytes"]);
    expect(promqlMetricNames("sum(rate(x[$__rate_interval])) by (template) / ignoring(status) group_left y")).toEqual(["x", "y"]);
    expect(promqlMetricNames('{__name__="z_total", job="a"}')).toEqual(["z_total"]);
    expect(promqlMetricNames("max without (instance) (simbatch_api_nodejs_eventloop_lag_p99_seconds)")).toEqual([
      "simbatch_api_nodejs_eventloop_lag_p99_seconds",
    ]);
  });

  it("takes the exported names from the real registry, histograms with their series", async () => {
    const names = await exportedSeriesNames();
    for (const n of [
      "simbatch_jobs_waiting_for_worker_slot",
      "simbatch_http_request_duration_seconds_bucket",
      "simbatch_job_duration_seconds_count",
      "simbatch_api_process_cpu_seconds_total",
    ]) {
      expect(names).toContain(n);
    }
    expect(names).not.toContain("simbatch_http_request_duration_seconds");
  });
});

describe("deploy/prometheus/alerts.yml", () => {
  it("has well-formed alerting rules", () => {
    const rules = alertRules();
    expect(rules.length).toBeGreaterThanOrEqual(10);
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules) {
      expect({ alert: r.alert, expr: typeof r.expr, severity: r.labels?.severity, summary: typeof r.annotations?.summary }).toEqual({
        alert: expect.stringMatching(/^Simbatch[A-Za-z]+$/),
        expr: "string",
        severity: expect.stringMatching(/^(warning|critical)$/),
        summary: "string",
      });
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
    }
  });

  it("alerts on what the issue names", () => {
    const exprs = alertRules().map((r) => r.expr);
    for (const metric of [
      "simbatch_jobs_waiting_in_postgres",
      "simbatch_jobs_oldest_waiting_age_seconds",
      "simbatch_events_oldest_age_seconds",
      "simbatch_workers_live",
      "simbatch_http_request_duration_seconds_count",
      "simbatch_webhook_deliveries_failed_total",
      "simbatch_job_outcomes_total",
    ]) {
      expect({ metric, used: exprs.some((e) => promqlMetricNames(e).includes(metric)) }).toEqual({ metric, used: true });
    }
  });

  it("names only metrics the service exports", async () => {
    const exported = await exportedSeriesNames();
    const unknown = alertRules().flatMap((r) =>
      promqlMetricNames(r.expr)
        .filter((n) => !exported.has(n) && !PROMETHEUS_OWN.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });
});

describe("deploy/grafana/simbatch-dashboard.json", () => {
  it("is importable: a Prometheus datasource variable every panel and query uses, unique panel ids", () => {
    const d = dashboard();
    expect(d.uid).toBeTruthy();
    expect(d.templating.list).toContainEqual(expect.objectContaining({ name: "datasource", type: "datasource", query: "prometheus" }));
    const panels = allPanels(d.panels).filter((p) => p.type !== "row");
    expect(panels.length).toBeGreaterThanOrEqual(10);
    const ids = allPanels(d.panels).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect({ title: p.title, ds: p.datasource?.uid, targets: (p.targets ?? []).length > 0 }).toEqual({ title: p.title, ds: "${datasource}", targets: true });
      for (const t of p.targets!) expect(t.datasource?.uid ?? "${datasource}").toBe("${datasource}");
    }
  });

  it("names only metrics the service exports", async () => {
    const exported = await exportedSeriesNames();
    const exprs = allPanels(dashboard().panels).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThanOrEqual(20);
    const unknown = exprs.flatMap(({ panel, expr }) =>
      promqlMetricNames(expr)
        .filter((n) => !exported.has(n) && !PROMETHEUS_OWN.has(n))
        .map((n) => `${panel}: ${n}`),
    );
    expect(unknown).toEqual([]);
    // Every metric an operator alerts on has a panel.
    const used = new Set(exprs.flatMap(({ expr }) => promqlMetricNames(expr)));
    for (const n of [
      "simbatch_jobs_waiting_for_worker_slot",
      "simbatch_jobs_oldest_released_age_seconds",
      "simbatch_events_oldest_age_seconds",
      "simbatch_job_duration_seconds_bucket",
      "simbatch_charged_micros_total",
      "simbatch_webhook_deliveries_failed_total",
    ]) {
      expect(used).toContain(n);
    }
  });
});
