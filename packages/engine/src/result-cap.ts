import type { SimulationResultPayload } from "./types.ts";

/** Largest serialized result the engine returns: 1 MiB (the API stores and serves it whole). */
export const MAX_RESULT_BYTES = 1024 * 1024;

const size = (r: unknown): number => Buffer.byteLength(JSON.stringify(r));

interface Trimmable {
  dialog?: unknown[];
  narrative?: string;
  timepoints?: Trimmable[];
}

/**
 * Keeps a result under MAX_RESULT_BYTES. The loop already stops writing dialog
 * near the cap; this is the backstop: drop dialog, then narratives, branch
 * timepoints first, and say so in `truncated`/`truncation_note`. Tokens stay
 * as charged: the text was produced, only the stored copy is shortened.
 */
export function capResult(result: SimulationResultPayload): SimulationResultPayload {
  if (size(result) <= MAX_RESULT_BYTES) return result;
  const branches = (Array.isArray(result["branches"]) ? result["branches"] : []) as Trimmable[];
  const groups: Trimmable[][] = [branches.flatMap((b) => b.timepoints ?? []), result.timepoints as Trimmable[]];
  for (const field of ["dialog", "narrative"] as const) {
    for (const tps of groups) {
      for (const tp of tps) {
        if (field === "dialog") tp.dialog = [];
        else tp.narrative = "";
      }
      if (size(result) <= MAX_RESULT_BYTES) return mark(result, field);
    }
  }
  return mark({ ...result, timepoints: [], branches: [] }, "timepoints");
}

function mark(result: SimulationResultPayload, what: string): SimulationResultPayload {
  return { ...result, truncated: true, truncation_note: `result exceeded ${MAX_RESULT_BYTES} bytes; ${what} removed to fit` };
}
