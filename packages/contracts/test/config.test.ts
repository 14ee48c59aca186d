import { knownConfigKeys, MAX_CONFIG_BYTES, SimulationRequestSchema } from "../src/index.ts";

describe("simulation config", () => {
  it("is capped at 16 KiB serialized, unknown keys included, with the path naming config", () => {
    const big = { seed: 1, junk: "x".repeat(MAX_CONFIG_BYTES) };
    const res = SimulationRequestSchema.safeParse({ template_id: "board_meeting", config: big });
    expect(res.success).toBe(false);
    if (!res.success) expect(res.error.issues.map((i) => [i.path.join("."), i.message])).toEqual([["config", "must be at most 16 KiB serialized"]]);
    const justUnder = { pad: "x".repeat(MAX_CONFIG_BYTES - 20) };
    expect(Buffer.byteLength(JSON.stringify(justUnder))).toBeLessThanOrEqual(MAX_CONFIG_BYTES);
    expect(SimulationRequestSchema.safeParse({ template_id: "board_meeting", config: justUnder }).success).toBe(true);
  });

  it("drops keys no template understands and keeps the known ones", () => {
    const parsed = SimulationRequestSchema.parse({ template_id: "board_meeting", config: { seed: 7, steps: 3, evil: { a: 1 }, __proto__x: 1 } });
    expect(parsed.config).toEqual({ seed: 7 });
  });

  it("keeps the keys a template defines for itself, by catalog id or short name", () => {
    const cfg = { seed: 1, steps: 2, step_ms: 0, cost_usd_per_step: 0.01, tokens_per_step: 5, fail_at_step: null, estimate_usd: 0.5, extra: true };
    const { extra: _extra, ...known } = cfg;
    expect(SimulationRequestSchema.parse({ template_id: "test/scripted", config: cfg }).config).toEqual(known);
    expect(SimulationRequestSchema.parse({ template_id: " scripted ", config: cfg }).config).toEqual(known);
    expect([...knownConfigKeys("showcase/board_meeting")]).toEqual(["seed"]);
    expect([...knownConfigKeys(null)]).toEqual(["seed"]);
  });

  it("leaves an absent or null config as given (the default applies later)", () => {
    expect(SimulationRequestSchema.parse({ template_id: "x" }).config).toBeUndefined();
    expect(SimulationRequestSchema.parse({ template_id: "x", config: null }).config).toBeNull();
  });
});
