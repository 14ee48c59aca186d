import { BatchReportSchema, ErrorBodySchema } from "@simbatch/contracts";
import { scripted, Stack } from "../support/stack.ts";

const HEADER = "index,job_id,status,template_id,temporal_mode,seed,cost_usd,tokens_used,duration_seconds,convergence_score,robustness_grade";

/** Postgres' percentile_cont: linear interpolation between the closest ranks. */
function percentileCont(values: number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  const pos = p * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return v[lo]! + (v[hi]! - v[lo]!) * (pos - lo);
}
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

/** RFC 4180: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += c;
  }
  expect(field).toBe("");
  expect(row).toEqual([]);
  return rows;
}

/** GET /simulations/batch/{id}/report (contract: Batch results and the cross-run report). */
describe("batch report", () => {
  const stack = new Stack({ workers: [4] });
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };
  const SEEDS = [1, 2, 3, 4, 5, 6];
  let sweep: Record<string, any>;

  const get = (key: string, path: string) => stack.http().get(path).set("X-API-Key", key);

  beforeAll(async () => {
    await stack.start();
    alice = await stack.env.user("alice", "pro");
    bob = await stack.env.user("bob", "pro");
    // A seed sweep of one built-in template, plus two runs of another, through the real workers.
    const simulations = [
      ...SEEDS.map((seed) => ({ template_id: "board_meeting", config: { seed } })),
      { template_id: "crisis_response", config: { seed: 1 } },
      { template_id: "crisis_response", config: { seed: 2 } },
    ];
    const res = await stack.submitBatch(alice.key, { simulations, parallel_jobs: 4, metadata: { sweep: "seeds" } });
    expect(res.status).toBe(202);
    sweep = await stack.waitBatch(alice.key, res.body.batch_id, (b) => b.status === "COMPLETED", 60_000);
  }, 90_000);
  afterAll(() => stack.stop());

  it("reports a seed sweep: counts, cost (total = actual_cost_usd), duration, convergence, grades, per-entity stance", async () => {
    const res = await get(alice.key, `/simulations/batch/${sweep.batch_id}/report`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const r = BatchReportSchema.parse(res.body);
    expect(Object.keys(res.body).sort()).toEqual([
      "batch_id",
      "convergence_score",
      "cost_usd",
      "duration_seconds",
      "entities",
      "jobs",
      "robustness_grades",
      "status",
      "templates",
      "tokens_used",
    ]);
    const { body: withJobs } = await get(alice.key, `/simulations/batch/${sweep.batch_id}/jobs`);
    const jobs: Record<string, any>[] = withJobs.jobs;
    const results = await Promise.all(jobs.map(async (j) => (await get(alice.key, `/simulations/${j.job_id}/result`)).body));

    expect(r).toMatchObject({ batch_id: sweep.batch_id, status: "COMPLETED" });
    expect(r.jobs).toEqual({ total: 8, completed: 8, failed: 0, cancelled: 0, pending: 0, running: 0 });
    expect(r.cost_usd.total).toBe(withJobs.batch.cost.actual_cost_usd);
    expect(r.cost_usd.total).toBe(sweep.cost.actual_cost_usd);
    expect(r.tokens_used).toBe(withJobs.batch.cost.tokens_used);
    expect(r.tokens_used).toBe(jobs.reduce((s, j) => s + j.tokens_used, 0));
    const micros = jobs.map((j) => Math.round(j.cost_usd * 1e6));
    expect(Math.round(r.cost_usd.total * 1e6)).toBe(micros.reduce((s, m) => s + m, 0));
    expect(r.cost_usd.mean).toBeCloseTo(Math.round(mean(micros)) / 1e6, 6);
    expect(r.cost_usd.p50).toBeCloseTo(Math.round(percentileCont(micros, 0.5)) / 1e6, 6);
    expect(r.cost_usd.p90).toBeCloseTo(Math.round(percentileCont(micros, 0.9)) / 1e6, 6);
    expect(r.cost_usd.max).toBe(Math.max(...micros) / 1e6);

    const durations = jobs.map((j) => (Date.parse(j.completed_at) - Date.parse(j.started_at)) / 1000);
    expect(r.duration_seconds.mean).toBeCloseTo(mean(durations), 6);
    expect(r.duration_seconds.p50).toBeCloseTo(percentileCont(durations, 0.5), 6);
    expect(r.duration_seconds.p90).toBeCloseTo(percentileCont(durations, 0.9), 6);
    // No float8 noise on the wire (0.20700000000000002): at most nine decimals.
    for (const v of Object.values(r.duration_seconds)) expect(String(v)).toMatch(/^\d+(\.\d{1,9})?$/);
    expect(r.duration_seconds.max).toBeCloseTo(Math.max(...durations), 6);

    const scores: number[] = results.map((x) => x.convergence_score);
    expect(scores.every((s) => typeof s === "number")).toBe(true);
    expect(r.convergence_score.mean).toBeCloseTo(mean(scores), 9);
    expect(r.convergence_score.min).toBe(Math.min(...scores));
    expect(r.convergence_score.max).toBe(Math.max(...scores));
    const grades: Record<string, number> = {};
    for (const x of results) grades[x.robustness_grade] = (grades[x.robustness_grade] ?? 0) + 1;
    expect(r.robustness_grades).toEqual(grades);
    expect(Object.values(r.robustness_grades).reduce((s, n) => s + n, 0)).toBe(8);
    expect(r.templates).toEqual({ "showcase/board_meeting": 6, "showcase/crisis_response": 2 });

    // Entities: each name of a template over that template's runs, in cast order.
    const expected: { template_id: string; name: string; stances: number[] }[] = [];
    for (const [i, x] of results.entries()) {
      for (const e of x.entities) {
        let agg = expected.find((a) => a.template_id === jobs[i]!.template_id && a.name === e.name);
        if (!agg) expected.push((agg = { template_id: jobs[i]!.template_id, name: e.name, stances: [] }));
        agg.stances.push(e.final_state.stance);
      }
    }
    expect(r.entities.map((e) => [e.template_id, e.name, e.runs])).toEqual(expected.map((e) => [e.template_id, e.name, e.stances.length]));
    for (const [i, e] of r.entities.entries()) {
      expect(e.final_stance.mean).toBeCloseTo(mean(expected[i]!.stances), 9);
      expect(e.final_stance.min).toBe(Math.min(...expected[i]!.stances));
      expect(e.final_stance.max).toBe(Math.max(...expected[i]!.stances));
    }
    const board = r.entities.filter((e) => e.template_id === "showcase/board_meeting");
    expect(board.length).toBeGreaterThan(0);
    expect(board.every((e) => e.runs === 6)).toBe(true);
    // Different seeds land the characters in different places.
    expect(board.some((e) => e.final_stance.min! < e.final_stance.max!)).toBe(true);
  });

  it("serves the same report as Markdown", async () => {
    const res = await get(alice.key, `/simulations/batch/${sweep.batch_id}/report?format=markdown`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/markdown/);
    const md = res.text;
    const { body: json } = await get(alice.key, `/simulations/batch/${sweep.batch_id}/report`);
    expect(md).toContain(`# Batch report: ${sweep.batch_id}`);
    for (const heading of ["## Jobs", "## Cost and duration", "## Convergence and robustness", "## Templates", "## Entities"]) expect(md).toContain(heading);
    expect(md).toContain("| 8 | 8 | 0 | 0 | 0 | 0 |");
    expect(md).toContain("| showcase/board_meeting | 6 |");
    for (const e of json.entities) expect(md).toContain(`| ${e.template_id} | ${e.name} | ${e.runs} |`);
    for (const g of Object.keys(json.robustness_grades)) expect(md).toContain(`| ${g} | ${json.robustness_grades[g]} |`);
  });

  it("serves CSV (RFC 4180): the contract's header, then one row per job in job_ids order", async () => {
    const res = await get(alice.key, `/simulations/batch/${sweep.batch_id}/report?format=CSV`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/csv/);
    expect(res.text.startsWith(`${HEADER}\r\n`)).toBe(true);
    const [header, ...rows] = parseCsv(res.text);
    expect(header!.join(",")).toBe(HEADER);
    const { body: withJobs } = await get(alice.key, `/simulations/batch/${sweep.batch_id}/jobs`);
    expect(rows.map((row) => row[1])).toEqual(sweep.job_ids);
    for (const [i, row] of rows.entries()) {
      const j = withJobs.jobs[i];
      const result = (await get(alice.key, `/simulations/${j.job_id}/result`)).body;
      expect(row).toHaveLength(11);
      expect(row.slice(0, 6)).toEqual([String(i), j.job_id, "COMPLETED", j.template_id, j.temporal_mode, String(j.config.seed)]);
      expect(Number(row[6])).toBe(j.cost_usd);
      expect(Number(row[7])).toBe(j.tokens_used);
      expect(Number(row[8])).toBe((Date.parse(j.completed_at) - Date.parse(j.started_at)) / 1000);
      expect(Number(row[9])).toBe(result.convergence_score);
      expect(row[10]).toBe(result.robustness_grade);
    }
    expect(rows.map((row) => row[5])).toEqual(["1", "2", "3", "4", "5", "6", "1", "2"]);
  });

  it("gives a completed run without config.seed the seed it ran with (its result's), so the row can be re-run", async () => {
    const { body: b } = await stack.submitBatch(alice.key, { simulations: [{ template_id: "board_meeting" }] });
    await stack.waitBatch(alice.key, b.batch_id, (x) => x.completed_at !== null);
    const result = (await get(alice.key, `/simulations/${b.job_ids[0]}/result`)).body;
    expect(typeof result.seed).toBe("number");
    const [, row] = parseCsv((await get(alice.key, `/simulations/batch/${b.batch_id}/report?format=csv`)).text);
    expect([row![2], row![5]]).toEqual(["COMPLETED", String(result.seed)]);
  });

  it("leaves cells empty and statistics null where no job qualifies, and counts unfinished jobs", async () => {
    const { body: b } = await stack.submitBatch(alice.key, {
      simulations: [scripted({ steps: 400, step_ms: 50 }), scripted({ steps: 1 }), { description: 'a, "quoted" run', config: { seed: 9 } }],
      parallel_jobs: 1,
    });
    await stack.waitJob(alice.key, b.job_ids[0], (j) => j.status === "RUNNING");
    const { body: r } = await get(alice.key, `/simulations/batch/${b.batch_id}/report`);
    BatchReportSchema.parse(r);
    expect(r).toMatchObject({
      batch_id: b.batch_id,
      status: "RUNNING",
      jobs: { total: 3, completed: 0, failed: 0, cancelled: 0, pending: 2, running: 1 },
      cost_usd: { total: 0, mean: null, p50: null, p90: null, max: null },
      tokens_used: 0,
      duration_seconds: { mean: null, p50: null, p90: null, max: null },
      convergence_score: { mean: null, min: null, max: null },
      robustness_grades: {},
      templates: { "test/scripted": 2 },
      entities: [],
    });
    const csv = parseCsv((await get(alice.key, `/simulations/batch/${b.batch_id}/report?format=csv`)).text);
    expect(csv.slice(1).map((row) => [row[2], row[5], row[8], row[9], row[10]])).toEqual([
      ["RUNNING", "", "", "", ""],
      ["PENDING", "", "", "", ""],
      ["PENDING", "9", "", "", ""],
    ]);
    const md = (await get(alice.key, `/simulations/batch/${b.batch_id}/report?format=markdown`)).text;
    expect(md).toContain("No completed run has a convergence score.");
    await stack.http().post(`/simulations/batch/${b.batch_id}/cancel`).set("X-API-Key", alice.key).send({});
    await stack.waitBatch(alice.key, b.batch_id, (x) => x.completed_at !== null);
    const { body: after } = await get(alice.key, `/simulations/batch/${b.batch_id}/report`);
    const { body: batch } = await get(alice.key, `/simulations/batch/${b.batch_id}`);
    expect(after.jobs).toEqual({ total: 3, completed: 0, failed: 0, cancelled: 3, pending: 0, running: 0 });
    expect(after.cost_usd.total).toBe(batch.cost.actual_cost_usd);
    expect(after.cost_usd.max).toBe(batch.cost.actual_cost_usd);
    expect(after.duration_seconds.mean).toBeNull();
  });

  it("counts a failed job's cost but not its duration", async () => {
    const { body: b } = await stack.submitBatch(alice.key, {
      simulations: [scripted({ steps: 3, fail_at_step: 3, cost_usd_per_step: 0.01 }), scripted({ steps: 1, cost_usd_per_step: 0.04 })],
      parallel_jobs: 2,
    });
    const done = await stack.waitBatch(alice.key, b.batch_id, (x) => x.completed_at !== null);
    const { body: r } = await get(alice.key, `/simulations/batch/${b.batch_id}/report`);
    expect(r).toMatchObject({ status: "PARTIAL", jobs: { total: 2, completed: 1, failed: 1 } });
    expect(r.cost_usd).toEqual({ total: 0.06, mean: 0.03, p50: 0.03, p90: 0.038, max: 0.04 });
    expect(r.cost_usd.total).toBe(done.cost.actual_cost_usd);
    expect(r.duration_seconds.mean).toBe(r.duration_seconds.max);
  });

  it("refuses an unknown format with 422 before looking at the batch; empty means json", async () => {
    for (const f of ["xml", "pdf", "jsonl"]) {
      const res = await get(alice.key, `/simulations/batch/${sweep.batch_id}/report?format=${f}`);
      expect({ status: res.status, error: res.body.error }).toEqual({ status: 422, error: "ValidationError" });
      expect(ErrorBodySchema.parse(res.body).detail).toEqual([expect.objectContaining({ path: "format" })]);
    }
    expect((await get(alice.key, "/simulations/batch/batch_000000000000/report?format=xml")).status).toBe(422);
    const empty = await get(alice.key, `/simulations/batch/${sweep.batch_id}/report?format=`);
    expect(empty.status).toBe(200);
    expect(empty.headers["content-type"]).toMatch(/^application\/json/);
    expect((await get(alice.key, `/simulations/batch/${sweep.batch_id}/report?format=Json`)).body.batch_id).toBe(sweep.batch_id);
  });

  it("is owner-scoped: 403 for another user's batch, 404 for an unknown id", async () => {
    for (const format of ["", "?format=csv", "?format=markdown"]) {
      const other = await get(bob.key, `/simulations/batch/${sweep.batch_id}/report${format}`);
      expect({ status: other.status, error: other.body.error }).toEqual({ status: 403, error: "Forbidden" });
      const missing = await get(alice.key, `/simulations/batch/batch_0123456789ab/report${format}`);
      expect({ status: missing.status, error: missing.body.error }).toEqual({ status: 404, error: "NotFound" });
    }
    expect((await stack.http().get(`/simulations/batch/${sweep.batch_id}/report`)).status).toBe(401);
  });
});
