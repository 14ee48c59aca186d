import type { SimulationResultPayload } from "../types.ts";

interface MdTimepoint {
  label?: string;
  act?: string;
  narrative?: string;
  events?: { description: string }[];
}
interface MdEntity {
  name?: string;
  role?: string;
  goal?: string;
  entity_id?: string;
}
interface MdBranch {
  branch_id: string;
  decision: string;
  timepoints?: MdTimepoint[];
}

const str = (v: unknown): string => (v === null || v === undefined ? "" : String(v));

/** Markdown for people: title, summary, cast, then each timepoint's text. Works for any engine's result. */
export function renderMarkdown(r: SimulationResultPayload): string {
  const out: string[] = [`# ${str(r["title"]) || "Simulation result"}`, ""];
  if (r["setting"]) out.push(`*Setting:* ${str(r["setting"])}  `, `*Question:* ${str(r["question"])}  `);
  if (r["temporal_mode"]) out.push(`*Temporal mode:* ${str(r["temporal_mode"])}`, "");
  if (r.summary) out.push("## Summary", "", r.summary, "");
  if (r.convergence_score !== null) out.push(`**Convergence:** ${r.convergence_score} (grade ${str(r.robustness_grade)})`, "");
  const entities = r.entities as MdEntity[];
  if (entities.length) {
    out.push("## Cast", "", "| id | name | role | goal |", "|---|---|---|---|");
    for (const e of entities) out.push(`| ${str(e.entity_id)} | ${str(e.name)} | ${str(e.role)} | ${str(e.goal)} |`);
    out.push("");
  }
  if (r["ordering"] === "end_to_origin") out.push("_Timepoints run backward, from the end state to the origin._", "");
  const tps = r.timepoints as MdTimepoint[];
  if (tps.length) out.push("## Timepoints", "");
  for (const tp of tps) out.push(...timepointBlock(tp, "###"));
  const branches = (Array.isArray(r["branches"]) ? r["branches"] : []) as MdBranch[];
  if (branches.length) out.push("## Branches", "");
  for (const b of branches) {
    out.push(`### Branch ${b.branch_id}`, "", b.decision, "");
    for (const tp of b.timepoints ?? []) out.push(...timepointBlock(tp, "####"));
  }
  if (r["truncated"]) out.push(`> ${str(r["truncation_note"])}`, "");
  return out.join("\n");
}

function timepointBlock(tp: MdTimepoint, h: string): string[] {
  const lines = [`${h} ${str(tp.label)}`, ""];
  const body = tp.narrative ? tp.narrative.split("\n").slice(1) : (tp.events ?? []).map((e) => e.description);
  for (const l of body) lines.push(l.startsWith("Standing:") ? `*${l}*` : `- ${l}`);
  lines.push("");
  return lines;
}
