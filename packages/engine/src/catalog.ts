import { usdToMicros } from "@simbatch/contracts";
import type { TemporalMode } from "./types.ts";

export type TemplateTier = "quick" | "standard" | "comprehensive";
export type TemplateCategory = "showcase" | "convergence" | "persona" | "test";

export interface TemplateInfo {
  template_id: string;
  name: string;
  description: string;
  category: TemplateCategory;
  tier: TemplateTier;
  mechanisms: string[];
  default_entity_count: number;
  default_timepoint_count: number;
  default_temporal_mode: TemporalMode;
  /** Catalog estimate for a run at the default counts, integer micro-dollars. */
  estimatedCostMicros: number;
  estimated_duration_seconds: number;
}

const t = (
  template_id: string,
  tier: TemplateTier,
  usd: number,
  seconds: number,
  entities: number,
  timepoints: number,
  mode: TemporalMode,
  name: string,
  description: string,
  mechanisms: string[],
): TemplateInfo => ({
  template_id,
  name,
  description,
  category: template_id.split("/")[0] as TemplateCategory,
  tier,
  mechanisms,
  default_entity_count: entities,
  default_timepoint_count: timepoints,
  default_temporal_mode: mode,
  estimatedCostMicros: usdToMicros(usd),
  estimated_duration_seconds: seconds,
});

/**
 * The 22 templates of the public catalog plus `crisis_response`. Ids, tiers,
 * categories, counts, modes, cost and duration follow the published catalog;
 * entries that ship no scenario get tier defaults (quick 2x2, standard 4x4,
 * comprehensive 8x6) and FORWARD.
 */
export const CATALOG: readonly TemplateInfo[] = [
  t(
    "showcase/board_meeting",
    "standard",
    0.05,
    120,
    5,
    3,
    "FORWARD",
    "Board Meeting",
    "A board weighs an acquisition offer while the founders and investors pull in different directions.",
    ["M1", "M2", "M3", "M7", "M11"],
  ),
  t(
    "showcase/jefferson_dinner",
    "standard",
    0.05,
    120,
    3,
    1,
    "FORWARD",
    "The Dinner Bargain",
    "Three statesmen trade a capital's location for a debt deal over one dinner.",
    ["M1", "M3", "M11", "M13"],
  ),
  t(
    "showcase/hospital_crisis",
    "standard",
    0.05,
    120,
    2,
    3,
    "FORWARD",
    "Hospital Surge",
    "A charge nurse and a chief resident keep an emergency ward running through a mass-casualty night.",
    ["M1", "M2", "M8", "M11"],
  ),
  t(
    "showcase/detective_prospection",
    "standard",
    0.05,
    120,
    2,
    2,
    "FORWARD",
    "Detective Prospection",
    "A detective and a witness reason forward from a handful of clues to the likeliest culprit.",
    ["M1", "M9", "M15"],
  ),
  t(
    "showcase/kami_shrine",
    "standard",
    0.05,
    120,
    4,
    1,
    "FORWARD",
    "The Village Shrine",
    "Villagers debate moving a shrine that stands in the way of a new road.",
    ["M1", "M3", "M16"],
  ),
  t(
    "showcase/vc_pitch_forward",
    "standard",
    0.08,
    180,
    4,
    4,
    "FORWARD",
    "Pitch Meeting",
    "Founders pitch a seed round to partners who probe the market, the team and the numbers.",
    ["M1", "M3", "M11"],
  ),
  t(
    "showcase/vc_pitch_branching",
    "standard",
    0.1,
    240,
    5,
    1,
    "BRANCHING",
    "Pitch Outcomes",
    "One pitch, several ways it can go: the branches a term sheet could take from the same meeting.",
    ["M1", "M3", "M11", "M12"],
  ),
  t(
    "showcase/vc_pitch_roadshow",
    "comprehensive",
    0.2,
    480,
    5,
    7,
    "FORWARD",
    "Fundraising Roadshow",
    "A week of back-to-back investor meetings, each shaping the next.",
    ["M1", "M2", "M3", "M7", "M11", "M14"],
  ),
  t(
    "showcase/vc_pitch_strategies",
    "standard",
    0.12,
    300,
    4,
    1,
    "BRANCHING",
    "Pitch Strategies",
    "The same founders try different opening strategies and compare where each leads.",
    ["M1", "M11", "M12"],
  ),
  t(
    "showcase/hound_shadow_directorial",
    "comprehensive",
    0.25,
    480,
    5,
    15,
    "DIRECTORIAL",
    "The Hound in the Shadow",
    "A moor, a legend and a family curse, told along a classic mystery arc.",
    ["M1", "M2", "M10", "M17"],
  ),
  t(
    "showcase/mars_mission_portal",
    "comprehensive",
    0.4,
    900,
    4,
    10,
    "PORTAL",
    "Mars Mission Post-Mortem",
    "From a failed landing back to the decisions that made it likely.",
    ["M1", "M4", "M9", "M12", "M18"],
  ),
  t(
    "showcase/castaway_colony_branching",
    "comprehensive",
    1.5,
    1200,
    10,
    4,
    "BRANCHING",
    "Castaway Colony",
    "Ten survivors found a colony; each crisis splits their future into branches.",
    ["M1", "M2", "M3", "M5", "M12", "M19"],
  ),
  t(
    "showcase/sec_investigation",
    "standard",
    0.08,
    180,
    4,
    5,
    "FORWARD",
    "Securities Investigation",
    "Investigators, counsel and an executive circle a suspicious trade.",
    ["M1", "M7", "M9", "M11"],
  ),
  t(
    "showcase/grant_review_panel",
    "standard",
    0.12,
    300,
    5,
    3,
    "BRANCHING",
    "Grant Review Panel",
    "Reviewers score a bold proposal; the panel's verdict branches on who persuades whom.",
    ["M1", "M3", "M11", "M12"],
  ),
  t(
    "showcase/crisis_response",
    "standard",
    0.05,
    120,
    4,
    3,
    "FORWARD",
    "Crisis Response",
    "A company's crisis team handles a data breach as the news breaks.",
    ["M1", "M2", "M8", "M11"],
  ),
  t("convergence/simple", "quick", 0.02, 30, 2, 2, "FORWARD", "Convergence: Simple", "A small two-party negotiation used to measure how often runs agree.", [
    "M1",
    "M6",
  ]),
  t("convergence/standard", "standard", 0.05, 60, 4, 4, "FORWARD", "Convergence: Standard", "A four-party negotiation for convergence measurement.", [
    "M1",
    "M6",
    "M11",
  ]),
  t(
    "convergence/comprehensive",
    "comprehensive",
    0.1,
    90,
    8,
    6,
    "FORWARD",
    "Convergence: Comprehensive",
    "A larger coalition-building run for convergence measurement.",
    ["M1", "M6", "M11", "M12"],
  ),
  t(
    "persona/agent1_regulatory_stress",
    "standard",
    0.08,
    180,
    4,
    5,
    "PORTAL",
    "Regulatory Stress",
    "From a failed audit back to the compliance choices behind it.",
    ["M1", "M4", "M9", "M18"],
  ),
  t(
    "persona/agent2_mission_failure",
    "standard",
    0.1,
    240,
    4,
    5,
    "BRANCHING",
    "Mission Failure",
    "A mission control team explores the branches after a critical fault.",
    ["M1", "M8", "M12"],
  ),
  t(
    "persona/agent3_litigation_discovery",
    "standard",
    0.06,
    120,
    4,
    4,
    "FORWARD",
    "Litigation Discovery",
    "Two legal teams work through discovery as documents surface.",
    ["M1", "M7", "M9"],
  ),
  t(
    "persona/agent3_litigation_portal",
    "comprehensive",
    0.4,
    900,
    4,
    8,
    "PORTAL",
    "Litigation Post-Mortem",
    "From a lost verdict back through the case's turning points.",
    ["M1", "M4", "M9", "M18"],
  ),
  t(
    "persona/agent4_elk_migration",
    "standard",
    0.1,
    240,
    4,
    6,
    "CYCLICAL",
    "Elk Migration",
    "Herds, wolves, ranchers and rangers through the seasons of a valley that repeat each year.",
    ["M1", "M5", "M16", "M19"],
  ),
];

/** Template driven entirely by its config; served only with SIMBATCH_TEST_TEMPLATES=1. */
export const SCRIPTED_TEMPLATE: TemplateInfo = t(
  "test/scripted",
  "quick",
  0.01,
  1,
  1,
  1,
  "FORWARD",
  "Scripted (test)",
  "Runs a scripted number of steps with exact timing, cost and failure, for tests and benchmarks.",
  [],
);

export interface Catalog {
  list(): readonly TemplateInfo[];
  /** Resolves a catalog id or its short name (`board_meeting`). */
  resolve(idOrShortName: string): TemplateInfo | undefined;
}

export function createCatalog(opts: { testTemplates: boolean }): Catalog {
  const all = opts.testTemplates ? [...CATALOG, SCRIPTED_TEMPLATE] : [...CATALOG];
  const byId = new Map(all.map((tpl) => [tpl.template_id, tpl]));
  const byShort = new Map(all.map((tpl) => [tpl.template_id.split("/")[1]!, tpl]));
  return {
    list: () => all,
    resolve: (key) => byId.get(key) ?? byShort.get(key),
  };
}
