import { cloneWorld, type World } from "./world.ts";
import { createRng, deriveSeed, round3 } from "./rng.ts";
import type { ModePlan } from "./modes.ts";

/** Seeded re-runs of the final steps used to measure convergence. */
export const CONVERGENCE_RERUNS = 5;
/** How many final steps each re-run replays (fewer when the run is shorter). */
export const CONVERGENCE_STEPS = 3;

/** An outcome: each entity's side on the question (for / undecided / against). */
export const outcomeOf = (w: World): number[] => w.entities.map((e) => (e.stance > 0.15 ? 1 : e.stance < -0.15 ? -1 : 0));

export interface Convergence {
  score: number;
  grade: string;
  reruns: number;
  rerun_steps: number;
  agreements: number[];
}

/** A ≥ 0.85, B ≥ 0.70, C ≥ 0.55, D ≥ 0.40, F below. */
export function gradeFor(score: number): string {
  return score >= 0.85 ? "A" : score >= 0.7 ? "B" : score >= 0.55 ? "C" : score >= 0.4 ? "D" : "F";
}

/**
 * Replays steps (from..to) from `before` with fresh seeds, state only (no text,
 * no tokens), and scores the share of entities that end on the same side as
 * in the real run, averaged over the re-runs.
 */
export function measureConvergence(plan: ModePlan, before: World, final: World, from: number, to: number, seed: number): Convergence {
  const target = outcomeOf(final);
  const agreements: number[] = [];
  for (let r = 1; r <= CONVERGENCE_RERUNS; r++) {
    const w = cloneWorld(before);
    const rng = createRng(deriveSeed(seed, `rerun:${r}`));
    for (let k = from; k <= to; k++) plan.advance(w, rng, k);
    const got = outcomeOf(w);
    agreements.push(round3(got.filter((v, i) => v === target[i]).length / Math.max(1, got.length)));
  }
  const score = round3(agreements.reduce((s, a) => s + a, 0) / agreements.length);
  return { score, grade: gradeFor(score), reruns: CONVERGENCE_RERUNS, rerun_steps: to - from + 1, agreements };
}
