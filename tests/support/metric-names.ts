import { ApiMetrics } from "../../apps/api/src/http/metrics.ts";

/**
 * Every series name GET /admin/metrics can carry, from the real registry (the
 * API's own metrics and prom-client's default process metrics, `simbatch_api_`
 * prefixed): a histogram as its `_bucket`, `_sum` and `_count` series, a
 * summary as itself, `_sum` and `_count`.
 */
export async function exportedSeriesNames(): Promise<Set<string>> {
  const metrics = await new ApiMetrics().registry.getMetricsAsJSON();
  const names = new Set<string>();
  for (const m of metrics) {
    const type = String(m.type);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(`${m.name}${s}`);
    else if (type === "summary") for (const s of ["", "_sum", "_count"]) names.add(`${m.name}${s}`);
    else names.add(m.name);
  }
  return names;
}

const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan"]);

/**
 * The metric names a PromQL expression selects. Strings, label matchers
 * (`{...}`), range and subquery brackets, grouping clauses (`by (...)`,
 * `on (...)`, ...), `offset` durations and Grafana variables are removed; of
 * what is left, a name followed by `(` is a function or aggregation, the other
 * identifiers are metric names. A selector written `{__name__="x"}` is read too.
 */
export function promqlMetricNames(expr: string): string[] {
  const names: string[] = [];
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.push(m[1]!);
  let s = expr
    .replace(/#[^\n]*/g, " ")
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_]\w*/g, " ");
  // Label matchers and range/subquery brackets hold no metric names.
  s = s.replace(/\{[^{}]*\}/g, " ").replace(/\[[^\]]*\]/g, " ");
  // Grouping and matching clauses: a keyword and its parenthesised label list.
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g, " ");
  s = s.replace(/\boffset\s+-?[0-9smhdwy]+/g, " ");
  // Numbers and durations first, so their letters are not read as names.
  s = s.replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?\b/gi, " ");
  const token = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  for (const m of s.matchAll(token)) {
    const word = m[0];
    const after = s.slice(m.index! + word.length).trimStart();
    if (after.startsWith("(")) continue; // function or aggregation
    if (KEYWORDS.has(word.toLowerCase())) continue;
    names.push(word);
  }
  return [...new Set(names)];
}
