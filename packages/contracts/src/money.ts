/**
 * Money crosses the wire in USD (a JSON number) and is kept everywhere else as
 * integer micro-dollars. These are the only conversions between the two.
 */
export const MICROS_PER_USD = 1_000_000;

/** USD from the wire to micro-dollars, rounded to the nearest micro-dollar. */
export const usdToMicros = (usd: number): number => Math.round(usd * MICROS_PER_USD);

/** Micro-dollars to USD for the wire. */
export const usd = (micros: bigint | number): number => Number(micros) / MICROS_PER_USD;

/** As `usd`, keeping a missing amount missing. */
export const microsToUsd = (micros: bigint | number | null | undefined): number | null => (micros === null || micros === undefined ? null : usd(micros));
