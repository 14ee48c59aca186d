import { countTokens as bpeCount } from "gpt-tokenizer/encoding/o200k_base";

/**
 * Output-token prices in USD per million tokens. Output prices, because every
 * token the engines charge is generated text. Operators override or extend
 * this through `EngineOptions.prices`.
 */
export const PRICE_TABLE: Readonly<Record<string, number>> = {
  "gpt-4-turbo": 30,
  "gpt-4o": 10,
  "gpt-4o-mini": 0.6,
  "gpt-4.1": 8,
  "gpt-4.1-mini": 1.6,
  "gpt-4.1-nano": 0.4,
  "gpt-5": 10,
  "gpt-5-mini": 2,
  o3: 8,
  "o4-mini": 4.4,
};

/**
 * Model the built-in engine prices its text at when none is configured. The
 * catalog's cost estimates were calibrated against it (see README).
 */
export const DEFAULT_BUILTIN_MODEL = "gpt-4-turbo";

/** USD per million tokens for `model`; throws so a run is never priced at a guess. */
export function pricePerMillion(model: string, overrides: Record<string, number> = {}): number {
  const price = overrides[model] ?? PRICE_TABLE[model];
  if (price === undefined || !Number.isFinite(price) || price < 0) {
    throw new Error(`no price for model "${model}": add it to EngineOptions.prices (USD per million tokens)`);
  }
  return price;
}

/**
 * Cumulative cost in integer micro-dollars. USD per million tokens is exactly
 * micro-dollars per token, so cost = tokens x price, rounded once over the
 * whole run (rounding per step would drift from the documented formula).
 */
export const tokensToMicros = (tokens: number, usdPerMillion: number): number => Math.round(tokens * usdPerMillion);

/** o200k_base: the encoding of the models in PRICE_TABLE. */
export const countTokens = (text: string): number => (text.length === 0 ? 0 : bpeCount(text));
