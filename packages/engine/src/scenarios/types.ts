/** One member of a template's cast: written by us, the facts of the scenario. */
export interface CastMember {
  name: string;
  role: string;
  goal: string;
  traits: string[];
  /** Starting position on the scenario's central question, -1 (against) .. 1 (for). */
  stance: number;
}

export interface Scenario {
  title: string;
  setting: string;
  /** The central question every entity takes a stance on, phrased as a gerund ("selling the company"). */
  question: string;
  cast: CastMember[];
  /** What people argue about. */
  topics: string[];
  /** Scenario-specific happenings, full sentences ("The acquirer raises its offer."). */
  incidents: string[];
  /** Roles given to entities generated past the end of the cast. */
  extraRoles: string[];
  /** Where a PORTAL run ends (its starting point, walking back). */
  endState: string;
  /** Named phases of one cycle for CYCLICAL runs (e.g. seasons); default phases otherwise. */
  phases?: string[];
  /**
   * Dialog lines per entity per timepoint. Some scenes are talkier than others;
   * calibrated so the run's cost at defaults lands near the catalog estimate.
   */
  talk: number;
  /** BRANCHING: alternative branches opened at each decision point. */
  alternatives: number;
}

/** Compact cast notation, `name|role|goal|trait,trait|stance`, keeps scenario files readable. */
export function cast(...rows: string[]): CastMember[] {
  return rows.map((row) => {
    const [name = "", role = "", goal = "", traits = "", stance = "0"] = row.split("|");
    return { name, role, goal, traits: traits.split(",").map((t) => t.trim()), stance: Number(stance) };
  });
}

type ScenarioInput = Omit<Scenario, "talk" | "alternatives" | "extraRoles"> & Partial<Pick<Scenario, "talk" | "alternatives" | "extraRoles">>;

export const scenario = (s: ScenarioInput): Scenario => ({
  talk: 3,
  alternatives: 2,
  extraRoles: ["advisor", "observer", "aide", "analyst"],
  ...s,
});
