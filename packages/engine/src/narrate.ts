import { countTokens } from "./pricing.ts";
import { pick, type Rng } from "./rng.ts";
import type { CastMember, Scenario } from "./scenarios/index.ts";
import type { EventKind, World } from "./world.ts";

export interface EventRecord { event_id: string; kind: EventKind; actor: string; target: string; topic: string; description: string }
export interface DialogLine { speaker: string; to: string; line: string }

/** What a narrator gets for one timepoint: the events already decided and the state after them. */
export interface NarrationRequest {
  scenario: Scenario;
  members: CastMember[];
  heading: string;
  events: EventRecord[];
  world: World;
  /** Dialog lines per entity; 0 when the result is near its size cap. */
  talk: number;
  rng: Rng;
}

export interface Narration { narrative: string; dialog: DialogLine[]; tokens: number }

/** Turns a decided timepoint into text: the built-in templates or a model. */
export interface Narrator {
  narrate(req: NarrationRequest): Promise<Narration>;
  /** Tokens charged for the locally written summary (the LLM engine writes it for free). */
  summaryTokens(summary: string): number;
}

const EVENT_TEXT: Record<EventKind, string[]> = {
  conflict: ["{a} confronts {b} over {t}.", "{a} accuses {b} of stalling on {t}.", "A sharp exchange breaks out between {a} and {b} about {t}."],
  alliance: ["{a} and {b} agree to back each other on {t}.", "{a} quietly offers {b} support on {t}.", "{a} and {b} find common ground on {t}."],
  revelation: ["{i} {a} is the first to see what it means for {t}.", "{a} reveals new facts about {t}, catching {b} off guard."],
  concession: ["{a} gives ground to {b} on {t}.", "{a} yields to {b}'s argument about {t}."],
  setback: ["{i} {a} takes the hit over {t}.", "{a} loses leverage when {t} turns against them."],
  breakthrough: ["{a} finds a way through on {t}, and {b} takes notice.", "{i} {a} turns it into an opening on {t}."],
};

export function describeEvent(kind: EventKind, a: string, b: string, topic: string, incident: string | null, rng: Rng): string {
  const forms = EVENT_TEXT[kind].filter((f) => incident !== null || !f.includes("{i}"));
  return pick(rng, forms).replace("{a}", a).replace("{b}", b).replace("{t}", topic).replace("{i}", incident ?? "");
}

const OPEN_WARM = ["Look,", "Honestly,", "I hear you, and", "Fair point, but", "Between us,"];
const OPEN_TENSE = ["No.", "With respect,", "Let me stop you there:", "That's not what happened.", "Come on,"];
const OPEN_FLAT = ["So", "Then", "Consider this:", "Right,", "Listen,"];
const FOR = ["we should commit to {q} and stop hedging on {t}", "{t} is exactly why {q} makes sense", "every day we wait on {q}, {t} gets worse", "I'll stand behind {q}; {t} leaves us no better option"];
const AGAINST = ["{q} would be a mistake while {t} is unresolved", "nobody has answered my question about {t}, so {q} is off the table for me", "{q} trades away more than {t} is worth", "I won't put my name to {q} until {t} is settled"];
const UNSURE = ["I need more on {t} before I take a side on {q}", "{t} cuts both ways, and so does {q}", "show me the numbers on {t} and I'll decide on {q}", "I can live with {q} or without it, but not with chaos over {t}"];
const ASIDE = ["", "", " You know that, {to}.", " I'll say it on the record.", " Ask anyone in this room.", " {to}, you've said as much yourself."];

const moodWord = (m: number) => (m > 0.4 ? "buoyant" : m > 0.1 ? "hopeful" : m > -0.2 ? "guarded" : m > -0.5 ? "tense" : "shaken");
const stanceWord = (s: number) => (s > 0.3 ? "for" : s < -0.3 ? "against" : "undecided");

function line(rng: Rng, req: NarrationRequest, speaker: number, to: number, topic: string): string {
  const w = req.world;
  const e = w.entities[speaker]!;
  const tense = speaker !== to && w.tension[speaker]![to]! > 0.45;
  const open = pick(rng, tense ? OPEN_TENSE : e.mood > 0.1 ? OPEN_WARM : OPEN_FLAT);
  const claims = e.stance > 0.3 ? FOR : e.stance < -0.3 ? AGAINST : UNSURE;
  const body = pick(rng, claims).replace("{q}", req.scenario.question).replace("{t}", topic);
  return `${open} ${body}.${pick(rng, ASIDE).replace("{to}", req.members[to]!.name.split(" ")[0]!)}`;
}

/** Dialog: event participants answer each other first, then everyone has their say. */
function dialog(req: NarrationRequest): DialogLine[] {
  const n = req.members.length, total = req.talk * n, rng = req.rng;
  const out: DialogLine[] = [];
  const ids = req.events.map((e) => [Number(e.actor.slice(1)) - 1, Number(e.target.slice(1)) - 1, e.topic] as const);
  for (let k = 0; k < total; k++) {
    const ev = ids[k % Math.max(1, ids.length)];
    const speaker = k < ids.length * 2 && ev ? ev[k % 2 === 0 ? 0 : 1] : k % n;
    const to = ev && speaker === ev[0] ? ev[1] : ev && speaker === ev[1] ? ev[0] : (speaker + 1 + Math.floor(rng() * Math.max(1, n - 1))) % n;
    const topic = ev && k < ids.length * 2 ? ev[2] : pick(rng, req.scenario.topics);
    out.push({ speaker: `e${speaker + 1}`, to: `e${to + 1}`, line: line(rng, req, speaker, to, topic) });
  }
  return out;
}

/** The text a timepoint is charged for: heading, events, dialog and where everyone stands. */
export function renderNarrative(req: NarrationRequest, lines: DialogLine[]): string {
  const name = (id: string) => req.members[Number(id.slice(1)) - 1]!.name;
  const parts = [req.heading, ...req.events.map((e) => e.description)];
  for (const d of lines) parts.push(`${name(d.speaker)} (to ${name(d.to)}): "${d.line}"`);
  parts.push("Standing: " + req.world.entities.map((e, i) => `${req.members[i]!.name}, ${moodWord(e.mood)}, ${stanceWord(e.stance)}`).join("; ") + ".");
  return parts.join("\n");
}

export const builtinNarrator: Narrator = {
  async narrate(req) {
    const lines = req.talk > 0 ? dialog(req) : [];
    const narrative = renderNarrative(req, lines);
    return { narrative, dialog: lines, tokens: countTokens(narrative) };
  },
  summaryTokens: countTokens,
};

export { moodWord, stanceWord };
