import { BuiltinEngine, CATALOG, countTokens, estimateCostMicros, PRICE_TABLE, DEFAULT_BUILTIN_MODEL, renderExport, TEMPORAL_MODES } from "../src/index.ts";
import type { RunOutcome, SimulationResultPayload } from "../src/index.ts";
import { recordingCtx, specFor } from "./helpers.ts";

const engine = new BuiltinEngine();
type Completed = Extract<RunOutcome, { kind: "completed" }>;
async function complete(...args: Parameters<typeof specFor>): Promise<Completed> {
  const out = await engine.run(specFor(...args), recordingCtx().ctx);
  if (out.kind !== "completed") throw new Error(`expected completed, got ${out.kind}`);
  return out;
}
interface Tp {
  narrative: string;
  index: number;
  act?: string;
  phase?: string;
  states: { stance: number }[];
  tokens: number;
}
const tps = (r: SimulationResultPayload) => r.timepoints as Tp[];
const branchTps = (r: SimulationResultPayload) => ((r["branches"] ?? []) as { timepoints: Tp[] }[]).flatMap((b) => b.timepoints);

describe("BuiltinEngine determinism", () => {
  it("gives the same result for the same seed and a different one for another seed", async () => {
    const a = await complete("showcase/board_meeting", { config: { seed: 42 } });
    const b = await complete("showcase/board_meeting", { config: { seed: 42 }, jobId: "sim_ffffffffffff" });
    const c = await complete("showcase/board_meeting", { config: { seed: 43 } });
    expect(JSON.stringify(b.result)).toBe(JSON.stringify(a.result));
    expect(b.tokens).toBe(a.tokens);
    expect(JSON.stringify(c.result)).not.toBe(JSON.stringify(a.result));
  });

  it("derives the seed from the job id when none is given", async () => {
    const a = await complete("showcase/board_meeting");
    const b = await complete("showcase/board_meeting", { jobId: "sim_000000000999" });
    expect(JSON.stringify(a.result)).not.toBe(JSON.stringify(b.result));
  });
});

describe("BuiltinEngine tokens and cost", () => {
  it.each(["showcase/board_meeting", "showcase/vc_pitch_branching", null])("counts exactly the produced text (%s)", async (id) => {
    const out = await complete(id);
    const texts = [...tps(out.result), ...branchTps(out.result)].map((t) => t.narrative);
    const expected = texts.reduce((s, t) => s + countTokens(t), 0) + countTokens(out.result.summary ?? "");
    expect(out.tokens).toBe(expected);
    expect(out.costMicros).toBe(Math.round(out.tokens * PRICE_TABLE[DEFAULT_BUILTIN_MODEL]!));
  });

  it("charges at an overridden price", async () => {
    const cheap = new BuiltinEngine({ model: "house-model", prices: { "house-model": 2 } });
    const out = await cheap.run(specFor("showcase/board_meeting"), recordingCtx().ctx);
    expect(out.costMicros).toBe(out.tokens * 2);
  });

  it("rejects a model without a price", () => {
    expect(() => new BuiltinEngine({ model: "mystery" })).toThrow(/no price for model "mystery"/);
  });

  it.each(CATALOG.map((t) => [t.template_id]))("lands within 2x of the estimate at defaults: %s", async (id) => {
    const t = CATALOG.find((x) => x.template_id === id)!;
    const out = await complete(id);
    const estimate = estimateCostMicros(t, t.default_entity_count, t.default_timepoint_count, {});
    expect(out.costMicros / estimate).toBeGreaterThan(0.5);
    expect(out.costMicros / estimate).toBeLessThan(2);
  });

  it("lands within 2x of the estimate for a description-only job", async () => {
    const out = await complete(null, { entityCount: 4, timepointCount: 5 });
    const ratio = out.costMicros / estimateCostMicros(null, 4, 5, {});
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});

describe("BuiltinEngine steps and interruption", () => {
  it("reports every timepoint with cumulative spending", async () => {
    const { ctx, reports } = recordingCtx();
    const out = await engine.run(specFor("showcase/sec_investigation"), ctx);
    expect(reports.map((r) => r.label)).toEqual(["timepoint 1/5", "timepoint 2/5", "timepoint 3/5", "timepoint 4/5", "timepoint 5/5"]);
    expect(reports.at(-1)).toMatchObject({ tokens: out.tokens, costMicros: out.costMicros });
    for (let i = 1; i < reports.length; i++) expect(reports[i]!.tokens).toBeGreaterThan(reports[i - 1]!.tokens);
  });

  it("stops after the step in flight and returns only that spending", async () => {
    const { ctx, reports } = recordingCtx(2);
    const out = await engine.run(specFor("showcase/sec_investigation"), ctx);
    expect(out).toMatchObject({ kind: "interrupted", steps: 2, tokens: reports[1]!.tokens, costMicros: reports[1]!.costMicros });
    expect(reports).toHaveLength(2);
  });
});

describe("BuiltinEngine temporal modes", () => {
  it("BRANCHING lists alternative branches from decision points", async () => {
    const out = await complete("showcase/castaway_colony_branching", { config: { seed: 1 } });
    const branches = out.result["branches"] as { from_timepoint: number; decision: string; timepoints: Tp[] }[];
    expect(out.result["decision_points"]).toEqual([1, 2, 3, 4]);
    expect(branches).toHaveLength(12);
    for (const b of branches) {
      expect(b.timepoints[0]!.index).toBe(b.from_timepoint);
      expect(b.decision).toMatch(/^What if: /);
    }
  });

  it("PORTAL runs from the end state back to the origin and says so", async () => {
    const out = await complete("showcase/mars_mission_portal");
    expect(out.result).toMatchObject({ direction: "backward", ordering: "end_to_origin" });
    expect(tps(out.result).map((t) => t.index)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(tps(out.result)[0]!.narrative).toContain("the lander is lost on descent");
  });

  it("CYCLICAL reports its period and recurring phases with recurring states", async () => {
    const out = await complete("persona/agent4_elk_migration", { timepointCount: 8 });
    expect(out.result["cycle_period"]).toBe(4);
    const t = tps(out.result);
    expect(t.map((x) => x.phase)).toEqual([
      "spring calving",
      "summer high country",
      "autumn rut",
      "winter range",
      "spring calving",
      "summer high country",
      "autumn rut",
      "winter range",
    ]);
    // A phase's second visit sits closer to its first visit than to the phase before it.
    const dist = (a: Tp, b: Tp) => a.states.reduce((s, x, i) => s + Math.abs(x.stance - b.states[i]!.stance), 0);
    expect(dist(t[4]!, t[0]!)).toBeLessThanOrEqual(dist(t[4]!, t[3]!) + 1e-9);
  });

  it("DIRECTORIAL labels each timepoint with its act along the arc", async () => {
    const out = await complete("showcase/hound_shadow_directorial");
    const acts = tps(out.result).map((t) => t.act);
    expect(acts[0]).toBe("setup");
    expect(acts.at(-1)).toBe("resolution");
    expect(new Set(acts)).toEqual(new Set(["setup", "rising action", "climax", "resolution"]));
    expect((out.result["narrative_arc"] as unknown[]).length).toBe(4);
  });

  const everyRun = CATALOG.flatMap((t) => TEMPORAL_MODES.map((m) => [t.template_id, m] as const));
  it.each(everyRun)("%s completes in %s mode", async (id, mode) => {
    const out = await complete(id, { temporalMode: mode, config: { seed: 5 } });
    expect(tps(out.result)).toHaveLength(specFor(id).timepointCount);
    expect(out.result.convergence_score).toBeGreaterThanOrEqual(0);
    expect(out.result.convergence_score).toBeLessThanOrEqual(1);
    expect(out.result.robustness_grade).toMatch(/^[ABCDF]$/);
    expect(out.result.summary).toEqual(expect.any(String));
  });
});

describe("BuiltinEngine entities, exports and size", () => {
  it("generates entities past the cast and a generic cast for description-only jobs", async () => {
    const big = await complete("showcase/hospital_crisis", { entityCount: 6 });
    const names = (big.result.entities as { name: string }[]).map((e) => e.name);
    expect(new Set(names).size).toBe(6);
    const desc = await complete(null);
    expect(desc.result["title"]).toContain("flood barrier");
  });

  it("renders its result as json, markdown and a real pdf; json and markdown the same bytes every time", async () => {
    const out = await complete("showcase/board_meeting", { exportFormats: ["json", "markdown", "pdf"] });
    const files = await Promise.all((["json", "markdown", "pdf"] as const).map((f) => renderExport(out.result, f)));
    const by = Object.fromEntries(files.map((e) => [e.format, e]));
    expect(JSON.parse(by["json"]!.content.toString())).toEqual(JSON.parse(JSON.stringify(out.result)));
    expect(by["markdown"]).toMatchObject({ contentType: "text/markdown" });
    expect(by["markdown"]!.content.toString()).toContain("# Board Meeting");
    expect(by["pdf"]!.contentType).toBe("application/pdf");
    expect(by["pdf"]!.content.subarray(0, 5).toString()).toBe("%PDF-");
    // json and markdown are rendered on each download, so a result must always give the same bytes.
    expect((await renderExport(out.result, "markdown")).content.equals(by["markdown"]!.content)).toBe(true);
    expect((await renderExport(out.result, "json")).content.equals(by["json"]!.content)).toBe(true);
  });

  it("keeps the largest runs under the result cap", async () => {
    const out = await complete("showcase/castaway_colony_branching", { entityCount: 20, timepointCount: 20 });
    expect(Buffer.byteLength(JSON.stringify(out.result))).toBeLessThanOrEqual(1024 * 1024);
  });
});
