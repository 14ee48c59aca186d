import { BuiltinEngine } from "./builtin-engine.ts";
import { SCRIPTED_TEMPLATE_ID } from "./run-config.ts";
import { ScriptedEngine } from "./scripted-engine.ts";
import type { RunContext, RunOutcome, SimulationEngine, SimulationSpec } from "./types.ts";

export interface EngineOptions {
  /** `builtin` (default, no network) or `openai`. */
  kind: "builtin" | "openai";
}

/** Routes `test/scripted` jobs to the scripted engine and the rest to the configured one. */
export function createEngine(opts: EngineOptions): SimulationEngine {
  const scripted = new ScriptedEngine();
  const main: SimulationEngine = new BuiltinEngine();
  if (opts.kind !== "builtin") throw new Error(`engine ${opts.kind} is not available`);
  return {
    name: main.name,
    run(spec: SimulationSpec, ctx: RunContext): Promise<RunOutcome> {
      return spec.templateId === SCRIPTED_TEMPLATE_ID ? scripted.run(spec, ctx) : main.run(spec, ctx);
    },
  };
}
