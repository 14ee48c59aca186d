import { createRng, hashString, pick } from "../rng.ts";
import { PERSONA } from "./persona.ts";
import { SHOWCASE_A } from "./showcase-a.ts";
import { SHOWCASE_B } from "./showcase-b.ts";
import { cast, scenario, type CastMember, type Scenario } from "./types.ts";

export type { CastMember, Scenario } from "./types.ts";

export const SCENARIOS: Readonly<Record<string, Scenario>> = { ...SHOWCASE_A, ...SHOWCASE_B, ...PERSONA };

const FIRST = [
  "Ada",
  "Bram",
  "Cleo",
  "Dmitri",
  "Esme",
  "Farid",
  "Greta",
  "Hugo",
  "Isla",
  "Jonah",
  "Kira",
  "Luca",
  "Mina",
  "Nils",
  "Odile",
  "Pavel",
  "Rhea",
  "Soren",
  "Talia",
  "Uri",
];
const LAST = [
  "Abbott",
  "Baptiste",
  "Castell",
  "Dunmore",
  "Ekwueme",
  "Fontaine",
  "Gallo",
  "Hirsch",
  "Ibarra",
  "Jansen",
  "Kowal",
  "Lindgren",
  "Mbeki",
  "Novak",
  "Okada",
  "Pereira",
];
const TRAITS = ["cautious", "ambitious", "loyal", "skeptical", "generous", "proud", "curious", "stubborn", "calm", "restless"];

/** Words worth talking about in a free-form description: long, not filler. */
const STOP = new Set([
  "about",
  "after",
  "their",
  "there",
  "which",
  "while",
  "would",
  "should",
  "could",
  "between",
  "where",
  "these",
  "those",
  "other",
  "under",
  "being",
]);
function keywords(text: string): string[] {
  const words = text.toLowerCase().match(/[a-z][a-z-]{4,}/g) ?? [];
  return [...new Set(words.filter((w) => !STOP.has(w)))].slice(0, 6);
}

/** A scenario for description-only jobs: a generic cast around the description's own words. */
export function genericScenario(description: string): Scenario {
  const words = keywords(description);
  const topics = words.length >= 2 ? words.map((w) => `the ${w}`) : ["the plan", "the risks", "the timeline", "the budget"];
  const short = description
    .trim()
    .replace(/\s+/g, " ")
    .slice(0, 80)
    .replace(/[.!?]+$/, "");
  return scenario({
    title: short.length > 0 ? short : "Open Scenario",
    setting: "the place where the described events unfold",
    question: `going ahead with ${topics[0]}`,
    cast: cast(
      "Avery Lane|lead|carry the plan through|driven,open|0.6",
      "Jordan Pike|skeptic|expose the plan's weak points|sharp,doubtful|-0.6",
      "Morgan Ellis|ally|keep the group together|warm,loyal|0.3",
      "Riley Stone|outsider|get a fair hearing|independent,wary|-0.2",
      "Casey Nguyen|mediator|find a middle way|patient,fair|0.0",
    ),
    topics,
    incidents: [`News about ${topics[0]} changes the picture.`, `A deadline on ${topics[1] ?? topics[0]} moves closer.`, "An unexpected ally speaks up."],
    endState: `the group settles its course on ${topics[0]}`,
    talk: 3,
  });
}

export function scenarioFor(templateId: string | null, description: string | null): Scenario {
  const known = templateId ? SCENARIOS[templateId] : undefined;
  return known ?? genericScenario(description ?? templateId ?? "");
}

/** The first `count` cast members; past the cast, seeded newcomers in the scenario's extra roles. */
export function castFor(sc: Scenario, count: number, seed: number): CastMember[] {
  const members = sc.cast.slice(0, count);
  const rng = createRng(hashString(`${seed}:cast`));
  const used = new Set(members.map((m) => m.name));
  while (members.length < count) {
    let name = `${pick(rng, FIRST)} ${pick(rng, LAST)}`;
    while (used.has(name)) name = `${pick(rng, FIRST)} ${pick(rng, LAST)}`;
    used.add(name);
    const role = pick(rng, sc.extraRoles);
    members.push({
      name,
      role,
      goal: `have a say on ${pick(rng, sc.topics)}`,
      traits: [pick(rng, TRAITS), pick(rng, TRAITS)].filter((t, i, a) => a.indexOf(t) === i),
      stance: Math.round((rng() * 2 - 1) * 10) / 10,
    });
  }
  return members;
}
