import { builtinNarrator } from "./narrate.ts";
import { DEFAULT_BUILTIN_MODEL, pricePerMillion } from "./pricing.ts";
import { runSimulation } from "./simulation.ts";
import type { RunContext, RunOutcome, SimulationEngine, SimulationSpec } from "./types.ts";

export interface BuiltinEngineOptions {
  /** Model whose price the generated text is charged at. Default DEFAULT_BUILTIN_MODEL. */
  model?: string;
  /** USD per million tokens, overriding PRICE_TABLE entries. Default none. */
  prices?: Record<string, number>;
}

/**
 * The default engine: no network, deterministic for a seed. Each step plays
 * one timepoint from the previous state and writes its text from templates;
 * the text is tokenized with the o200k encoding and charged at the model's price.
 */
export class BuiltinEngine implements SimulationEngine {
  readonly name = "builtin";
  private readonly model: string;
  private readonly usdPerMillion: number;

  constructor(opts: BuiltinEngineOptions = {}) {
    this.model = opts.model ?? DEFAULT_BUILTIN_MODEL;
    this.usdPerMillion = pricePerMillion(this.model, opts.prices);
  }

  async run(spec: SimulationSpec, ctx: RunContext): Promise<RunOutcome> {
    return runSimulation(spec, ctx, { narrator: builtinNarrator, usdPerMillion: this.usdPerMillion, model: this.model });
  }
}
