import type { Convergence } from "./convergence.ts";
import { stanceWord } from "./narrate.ts";
import type { CastMember, Scenario } from "./scenarios/index.ts";
import type { TemporalMode } from "./types.ts";
import type { World } from "./world.ts";

export interface SummaryInput {
  scenario: Scenario;
  members: CastMember[];
  mode: TemporalMode;
  world: World;
  /** Event descriptions in chronological order. */
  events: string[];
  convergence: Convergence;
  modeNote: string;
}

function extremePair(w: World, m: number[][], dir: 1 | -1): [number, number, number] | null {
  let best: [number, number, number] | null = null;
  for (let i = 0; i < m.length; i++)
    for (let j = i + 1; j < m.length; j++) {
      const v = m[i]![j]!;
      if (!best || dir * v > dir * best[2]) best = [i, j, v];
    }
  return best;
}

/** A short, readable account of the run, written from the final state and the event log. */
export function writeSummary(s: SummaryInput): string {
  const name = (i: number) => s.members[i]!.name;
  const sides = { for: [] as string[], against: [] as string[], undecided: [] as string[] };
  s.world.entities.forEach((e, i) => sides[stanceWord(e.stance) as keyof typeof sides].push(name(i)));
  const list = (xs: string[]) => (xs.length ? xs.join(", ") : "no one");
  const ally = extremePair(s.world, s.world.trust, 1);
  const rival = extremePair(s.world, s.world.tension, 1);
  const parts = [
    `${s.scenario.title}: ${s.members.length} people in ${s.scenario.setting}, run in ${s.mode} mode. ${s.modeNote}`,
    s.events.length ? `First turn: ${s.events[0]} Last turn: ${s.events[s.events.length - 1]}` : "",
    `On ${s.scenario.question}: for, ${list(sides.for)}; against, ${list(sides.against)}; undecided, ${list(sides.undecided)}.`,
    ally ? `Closest allies: ${name(ally[0])} and ${name(ally[1])}.` : "",
    rival ? `Sharpest friction: ${name(rival[0])} and ${name(rival[1])}.` : "",
    `Across ${s.convergence.reruns} re-runs of the last ${s.convergence.rerun_steps} step(s), ${Math.round(s.convergence.score * 100)}% of positions held (grade ${s.convergence.grade}).`,
  ];
  return parts.filter(Boolean).join(" ");
}
