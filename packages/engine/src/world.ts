import { clamp, pick, weightedIndex, type Rng } from "./rng.ts";
import type { CastMember, Scenario } from "./scenarios/index.ts";

export interface EntityState {
  /** -1 (despairing) .. 1 (elated). */
  mood: number;
  /** Position on the scenario's question, -1 (against) .. 1 (for). */
  stance: number;
  /** 0..100: leverage, supplies, credibility; what an entity can spend. */
  resources: number;
}

export interface World {
  entities: EntityState[];
  /** Symmetric matrices indexed [i][j]: trust -1..1, tension 0..1. */
  trust: number[][];
  tension: number[][];
}

export const EVENT_KINDS = ["conflict", "alliance", "revelation", "concession", "setback", "breakthrough"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** Everything an event changes, fixed when planned so a PORTAL run can subtract it exactly. */
export interface Delta {
  actorMood: number;
  targetMood: number;
  actorStance: number;
  targetStance: number;
  actorResources: number;
  targetResources: number;
  trust: number;
  tension: number;
}

export interface PlannedEvent {
  kind: EventKind;
  actor: number;
  target: number;
  topic: string;
  incident: string | null;
  delta: Delta;
}

/** How much each kind raises (+) or lowers (-) tension; modes steer with it. */
export const TENSION_SIGN: Record<EventKind, number> = {
  conflict: 1,
  revelation: 0.5,
  setback: 0.4,
  concession: -1,
  alliance: -0.8,
  breakthrough: -0.3,
};

const matrix = (n: number, f: (i: number, j: number) => number): number[][] =>
  Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 0 : f(Math.min(i, j), Math.max(i, j)))));

/** Opening state: stances from the cast, trust higher between people who already agree. */
export function initialWorld(members: CastMember[], rng: Rng): World {
  const entities = members.map((m) => ({ mood: Math.round((rng() * 0.6 - 0.1) * 100) / 100, stance: m.stance, resources: 40 + Math.floor(rng() * 40) }));
  const noise = matrix(members.length, () => rng() * 0.2 - 0.1);
  const gap = (i: number, j: number) => Math.abs(entities[i]!.stance - entities[j]!.stance);
  return {
    entities,
    trust: matrix(members.length, (i, j) => clamp(0.4 - gap(i, j) * 0.4 + noise[i]![j]!, -1, 1)),
    tension: matrix(members.length, (i, j) => clamp(gap(i, j) * 0.3 + Math.abs(noise[i]![j]!), 0, 1)),
  };
}

export const cloneWorld = (w: World): World => ({
  entities: w.entities.map((e) => ({ ...e })),
  trust: w.trust.map((r) => r.slice()),
  tension: w.tension.map((r) => r.slice()),
});

function deltaFor(kind: EventKind, w: World, a: number, b: number): Delta {
  const A = w.entities[a]!,
    B = w.entities[b]!;
  const toward = (from: number, to: number, k: number) => (to - from) * k;
  const d: Delta = { actorMood: 0, targetMood: 0, actorStance: 0, targetStance: 0, actorResources: 0, targetResources: 0, trust: 0, tension: 0 };
  switch (kind) {
    case "conflict":
      return {
        ...d,
        actorMood: -0.05,
        targetMood: -0.15,
        actorStance: Math.sign(A.stance) * 0.08,
        targetStance: Math.sign(B.stance) * 0.08,
        actorResources: -3,
        targetResources: -5,
        trust: -0.18,
        tension: 0.22,
      };
    case "alliance":
      return { ...d, actorMood: 0.12, targetMood: 0.12, targetStance: toward(B.stance, A.stance, 0.35), trust: 0.2, tension: -0.12 };
    case "revelation":
      return { ...d, actorMood: 0.05, targetMood: -0.1, targetStance: toward(B.stance, A.stance, 0.25), actorResources: 6, trust: -0.05, tension: 0.1 };
    case "concession":
      return {
        ...d,
        actorMood: -0.08,
        targetMood: 0.15,
        actorStance: toward(A.stance, B.stance, 0.4),
        actorResources: -6,
        targetResources: 6,
        trust: 0.12,
        tension: -0.2,
      };
    case "setback":
      return { ...d, actorMood: -0.25, targetMood: 0.05, actorStance: -Math.sign(A.stance || 1) * 0.12, actorResources: -10, tension: 0.06 };
    case "breakthrough":
      return { ...d, actorMood: 0.25, targetMood: 0.05, targetStance: toward(B.stance, A.stance, 0.2), actorResources: 9, trust: 0.08, tension: -0.05 };
  }
}

/** Adds (sign 1) or removes (sign -1, PORTAL) an event's effect, clamped to the valid ranges. */
export function applyDelta(w: World, ev: PlannedEvent, sign: 1 | -1): void {
  const A = w.entities[ev.actor]!,
    B = w.entities[ev.target]!,
    d = ev.delta;
  A.mood = clamp(A.mood + sign * d.actorMood, -1, 1);
  B.mood = clamp(B.mood + sign * d.targetMood, -1, 1);
  A.stance = clamp(A.stance + sign * d.actorStance, -1, 1);
  B.stance = clamp(B.stance + sign * d.targetStance, -1, 1);
  A.resources = clamp(A.resources + sign * d.actorResources, 0, 100);
  B.resources = clamp(B.resources + sign * d.targetResources, 0, 100);
  if (ev.actor === ev.target) return;
  const t = clamp(w.trust[ev.actor]![ev.target]! + sign * d.trust, -1, 1);
  const x = clamp(w.tension[ev.actor]![ev.target]! + sign * d.tension, 0, 1);
  w.trust[ev.actor]![ev.target] = t;
  w.trust[ev.target]![ev.actor] = t;
  w.tension[ev.actor]![ev.target] = x;
  w.tension[ev.target]![ev.actor] = x;
}

export function meanTension(w: World): number {
  const n = w.entities.length;
  if (n < 2) return 0;
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) s += w.tension[i]![j]!;
  return s / ((n * (n - 1)) / 2);
}

/**
 * Kind weights from the state: tense pairs fight or give way, low moods invite
 * setbacks, rich entities make breakthroughs. `steer` (from a mode) multiplies them.
 */
export function kindWeights(w: World, actor: number, target: number, steer?: (k: EventKind) => number): number[] {
  const A = w.entities[actor]!;
  const tension = actor === target ? 0.3 : w.tension[actor]![target]!;
  const trust = actor === target ? 0 : w.trust[actor]![target]!;
  const base: Record<EventKind, number> = {
    conflict: 0.3 + tension,
    alliance: 0.3 + Math.max(0, trust),
    revelation: 0.4,
    concession: 0.15 + tension * 0.6,
    setback: 0.2 + Math.max(0, -A.mood) * 0.5,
    breakthrough: 0.1 + A.resources / 150,
  };
  return EVENT_KINDS.map((k) => base[k] * (steer ? steer(k) : 1));
}

/** One event: who acts (the better resourced act more), on whom, what kind, about what. */
export function planEvent(w: World, rng: Rng, sc: Scenario, steer?: (k: EventKind) => number): PlannedEvent {
  const n = w.entities.length;
  const actor = weightedIndex(
    rng,
    w.entities.map((e) => 10 + e.resources + Math.abs(e.stance) * 30),
  );
  const target = n === 1 ? actor : (actor + 1 + Math.floor(rng() * (n - 1))) % n;
  const kind = EVENT_KINDS[weightedIndex(rng, kindWeights(w, actor, target, steer))]!;
  const incident = kind === "revelation" || kind === "setback" || (kind === "breakthrough" && rng() < 0.5) ? pick(rng, sc.incidents) : null;
  return { kind, actor, target, topic: pick(rng, sc.topics), incident, delta: deltaFor(kind, w, actor, target) };
}

/** Events per timepoint grow with the cast so larger groups get more happening. */
export const eventsPerStep = (entityCount: number): number => Math.min(4, 1 + Math.floor(entityCount / 3));
