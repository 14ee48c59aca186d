import { actFor, ACTS, cyclePhases } from "./modes.ts";
import type { DialogLine, EventRecord } from "./narrate.ts";
import type { Scenario } from "./scenarios/index.ts";
import type { TemporalMode } from "./types.ts";
import type { World } from "./world.ts";

export interface EntityStateRecord {
  entity_id: string;
  mood: number;
  stance: number;
  resources: number;
}

export interface Timepoint {
  timepoint_id: string;
  index: number;
  label: string;
  /** `main`, or the id of the alternative branch it belongs to. */
  branch_id: string;
  act?: string;
  phase?: string;
  cycle?: number | undefined;
  events: EventRecord[];
  dialog: DialogLine[];
  states: EntityStateRecord[];
  relationship_changes: { source: string; target: string; cause: string; trust_change: number; tension_change: number; trust: number; tension: number }[];
  /** The text this timepoint was charged for. */
  narrative: string;
  tokens: number;
}

export interface Branch {
  branch_id: string;
  from_timepoint: number;
  decision: string;
  timepoints: Timepoint[];
  final_states: EntityStateRecord[];
}

/** The keys that show each temporal mode's structure in the result. */
export function modeExtras(
  mode: TemporalMode,
  sc: Scenario,
  n: number,
  tps: Timepoint[],
  branches: Branch[],
  decisions: Set<number>,
  origin: World,
  stateOf: (w: World, i: number) => EntityStateRecord,
): Record<string, unknown> {
  switch (mode) {
    case "BRANCHING":
      return { decision_points: [...decisions], branches };
    case "PORTAL":
      return {
        direction: "backward",
        ordering: "end_to_origin",
        end_state: sc.endState,
        ordering_note: "timepoints are listed from the end state back to the origin; index still counts forward in time",
        origin_state: origin.entities.map((_, i) => stateOf(origin, i)),
      };
    case "CYCLICAL": {
      const phases = cyclePhases(sc, n);
      return {
        cycle_period: phases.length,
        phases,
        cycles: Math.ceil(n / phases.length),
        recurrences: phases.map((phase) => ({ phase, timepoints: tps.filter((t) => t.phase === phase).map((t) => t.index) })),
      };
    }
    case "DIRECTORIAL":
      return {
        narrative_arc: ACTS.map((act) => ({ act, timepoints: tps.filter((t) => actFor(t.index, n) === act).map((t) => t.index) })).filter(
          (a) => a.timepoints.length > 0,
        ),
      };
    case "FORWARD":
      return {};
  }
}
