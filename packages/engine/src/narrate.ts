import { countTokens } from "./pricing.ts";
import { pick, type Rng } from "./rng.ts";
import type { CastMember, Scenario } from "./scenarios/index.ts";
import type { EventKind, World } from "./world.ts";

export interface EventRecord {
  event_id: string;
  kind: EventKind;
  actor: string;
  target: string;
  topic: string;
  description: string;
}
export interface DialogLine {
  speaker: string;
  to: string;
  line: string;
}

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

export interface Narration {
  narrative: string;
  dialog: DialogLine[];
  tokens: number;
}

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
  return pick(rng, forms)
    .replace("{a}", a)
    .replace("{b}", b)
    .replace("{t}", topic)
    .replace("{i}", incident ?? "");
}

const OPEN_WARM = ["Look,", "Honestly,", "I hear you, and", "Fair point, but", "Between us,"];
const OPEN_TENSE = ["No.", "With respect,", "Let me stop you there:", "That's not what happened.", "Come on,"];
const OPEN_FLAT = ["So", "Then", "Consider this:", "Right,", "Listen,"];
const FOR = [
  "we should commit to {q} and stop hedging on {t}",
  "{t} is exactly why {q} makes sense",
  "every day we wait, {t} gets worse",
  "I'll stand behind {q}; {t} leaves us no better option",
  "the case for {q} has never been stronger",
  "{t} is moving our way, so let's not waste it",
  "I've run the numbers on {t} and they point one way",
  "we can fix {t} afterwards; first we decide",
];
const AGAINST = [
  "{q} would be a mistake while {t} is unresolved",
  "nobody has answered my question about {t}",
  "{q} trades away more than {t} is worth",
  "I won't put my name to {q} until {t} is settled",
  "we're being rushed, and {t} is the proof",
  "I've seen this before: {t} comes back to bite",
  "there's a better way through {t} than {q}",
  "count me out until someone owns {t}",
];
const UNSURE = [
  "I need more on {t} before I take a side on {q}",
  "{t} cuts both ways, and so does {q}",
  "show me the numbers on {t} and I'll decide",
  "I can live with either outcome, but not with chaos over {t}",
  "both of you are half right about {t}",
  "what happens to {t} if we wait a week?",
  "I'm listening, but {t} worries me",
  "convince me on {t} and you'll have my vote",
];
/** First words of the two people an event involves: the event as they experience it. */
const REACT: Record<EventKind, [string[], string[]]> = {
  conflict: [
    ["You've been stalling on {t}, {to}.", "I won't let {t} slide again, {to}."],
    ["That's unfair, and you know it.", "Stalling? I'm the only one who has read the file on {t}."],
  ],
  alliance: [
    ["On {t}, you have my support, {to}.", "{to}, let's settle {t} together."],
    ["Then we stand together on {t}.", "Good. Two voices carry further than one."],
  ],
  revelation: [
    ["You need to see this about {t}, {to}.", "There's something about {t} nobody has told you."],
    ["Why am I only hearing about {t} now?", "That changes how I read {t}."],
  ],
  concession: [
    ["All right, {to}, you win on {t}.", "I'll give you {t}, {to}. Don't make me regret it."],
    ["Thank you. That matters more than you think.", "I won't forget that."],
  ],
  setback: [
    ["This changes everything about {t}.", "I didn't see {t} going this way."],
    ["We'll recover, but not by pretending it's fine.", "Then we plan for the worst on {t}."],
  ],
  breakthrough: [
    ["I think I've found a way through on {t}.", "{to}, look at this: {t} may not be a wall after all."],
    ["Go on, I'm listening.", "If that holds, it changes the room."],
  ],
};
const ASIDE = ["", "", " You know that, {to}.", " I'll say it on the record.", " Ask anyone in this room.", " {to}, you've said as much yourself."];

const moodWord = (m: number) => (m > 0.4 ? "buoyant" : m > 0.1 ? "hopeful" : m > -0.2 ? "guarded" : m > -0.5 ? "tense" : "shaken");
const stanceWord = (s: number) => (s > 0.3 ? "for" : s < -0.3 ? "against" : "undecided");

const fill = (s: string, q: string, t: string, to: string) => s.replace("{q}", q).replace("{t}", t).replace("{to}", to);
/** How people address each other: first name, or surname after a title ("Dr. Park" -> "Park"). */
const callName = (full: string) => {
  const w = full.split(" ");
  return /^(Dr\.|Prof\.|Sir|Commander|Inspector|Judge)$/.test(w[0]!) ? w[w.length - 1]! : w[0]!;
};
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function line(rng: Rng, req: NarrationRequest, speaker: number, to: number, topic: string): string {
  const w = req.world;
  const e = w.entities[speaker]!;
  const tense = speaker !== to && w.tension[speaker]![to]! > 0.45;
  const open = pick(rng, tense ? OPEN_TENSE : e.mood > 0.1 ? OPEN_WARM : OPEN_FLAT);
  const claims = e.stance > 0.3 ? FOR : e.stance < -0.3 ? AGAINST : UNSURE;
  const toName = callName(req.members[to]!.name);
  const body = fill(pick(rng, claims), req.scenario.question, topic, toName);
  const sentence = /[.!?]$/.test(body) ? body : `${body}.`; // a question keeps its own mark
  return `${open} ${/[.:]$/.test(open) ? cap(sentence) : sentence}${fill(pick(rng, ASIDE), "", "", toName)}`;
}

/** Dialog: each event's two people answer each other first, then everyone has their say. */
function dialog(req: NarrationRequest): DialogLine[] {
  const n = req.members.length,
    rng = req.rng;
  const out: DialogLine[] = [];
  const say = (s: number, t: number, text: string) => out.push({ speaker: `e${s + 1}`, to: `e${t + 1}`, line: text });
  for (const ev of req.events) {
    const a = Number(ev.actor.slice(1)) - 1,
      b = Number(ev.target.slice(1)) - 1;
    if (a === b || out.length + 2 > req.talk * n) continue;
    const [first, reply] = REACT[ev.kind];
    say(a, b, fill(pick(rng, first), "", ev.topic, callName(req.members[b]!.name)));
    say(b, a, fill(pick(rng, reply), "", ev.topic, callName(req.members[a]!.name)));
  }
  for (let k = 0; out.length < req.talk * n; k++) {
    const speaker = k % n;
    const to = n === 1 ? speaker : (speaker + 1 + Math.floor(rng() * (n - 1))) % n;
    say(speaker, to, line(rng, req, speaker, to, pick(rng, req.scenario.topics)));
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
