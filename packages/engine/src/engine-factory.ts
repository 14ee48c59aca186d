import { BuiltinEngine } from "./builtin-engine.ts";
import { OpenAIEngine, type OpenAIOptions } from "./openai-engine.ts";
import { SCRIPTED_TEMPLATE_ID } from "./run-config.ts";
import { ScriptedEngine } from "./scripted-engine.ts";
import type { RunContext, RunOutcome, SimulationEngine, SimulationSpec } from "./types.ts";

export interface EngineOptions {
  /** `builtin` (default, no network) or `openai` (an OpenAI-compatible chat completions API). */
  kind: "builtin" | "openai";
  /** Required when kind is `openai`. */
  openai?: OpenAIOptions;
  /** USD per million tokens by model name; overrides and extends PRICE_TABLE. Default none. */
  prices?: Record<string, number>;
  /** Model the builtin engine's text is priced at. Default DEFAULT_BUILTIN_MODEL (`gpt-4-turbo`). */
  model?: string;
}

/**
 * Routes `test/scripted` jobs to the scripted engine and the rest to the
 * configured one. Throws at construction (boot) on a model with no price, so
 * a misconfigured deployment fails before it charges anything.
 */
export function createEngine(opts: EngineOptions): SimulationEngine {
  const scripted = new ScriptedEngine();
  const main = mainEngine(opts);
  return {
    name: main.name,
    run(spec: SimulationSpec, ctx: RunContext): Promise<RunOutcome> {
      return spec.templateId === SCRIPTED_TEMPLATE_ID ? scripted.run(spec, ctx) : main.run(spec, ctx);
    },
  };
}

function mainEngine(opts: EngineOptions): SimulationEngine {
  if (opts.kind === "builtin") return new BuiltinEngine({ model: opts.model, prices: opts.prices });
  if (opts.kind === "openai") {
    if (!opts.openai) throw new Error("engine kind openai needs EngineOptions.openai");
    return new OpenAIEngine(opts.openai, opts.prices);
  }
  throw new Error(`unknown engine kind ${String(opts.kind)}`);
}
