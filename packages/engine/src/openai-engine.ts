import { moodWord, stanceWord, type DialogLine, type NarrationRequest, type Narrator } from "./narrate.ts";
import { chatCompletion, type ChatMessage, type OpenAIOptions } from "./openai-client.ts";
import { pricePerMillion } from "./pricing.ts";
import { runSimulation } from "./simulation.ts";
import type { RunContext, RunOutcome, SimulationEngine, SimulationSpec } from "./types.ts";

export type { OpenAIOptions, ProviderErrorEvent } from "./openai-client.ts";

const SYSTEM =
  "You narrate one timepoint of a multi-party simulation. Given the cast, their state and the events, write " +
  "one sentence of scene-setting, then short dialog lines, each on its own line as `Name: words`. No headings, no commentary.";

function prompt(req: NarrationRequest): ChatMessage[] {
  const cast = req.members.map((m, i) => {
    const e = req.world.entities[i]!;
    return `- ${m.name} (${m.role}; wants to ${m.goal}; ${m.traits.join(", ")}): ${moodWord(e.mood)}, ${stanceWord(e.stance)} ${req.scenario.question}`;
  });
  const user = [
    `Scenario: ${req.scenario.title}, in ${req.scenario.setting}. Central question: ${req.scenario.question}.`,
    `Timepoint: ${req.heading}`,
    "Cast:",
    ...cast,
    "Events:",
    ...req.events.map((e) => `- ${e.description}`),
    `Write about ${Math.max(1, req.talk) * req.members.length} dialog lines.`,
  ].join("\n");
  return [
    { role: "system", content: SYSTEM },
    { role: "user", content: user },
  ];
}

/** `Name: words` lines from the model, matched to the cast; anything else stays narrative only. */
function parseDialog(req: NarrationRequest, content: string): DialogLine[] {
  const byName = new Map(req.members.map((m, i) => [m.name.toLowerCase(), i]));
  const out: DialogLine[] = [];
  for (const raw of content.split("\n")) {
    const m = /^\s*\**([^:*]{2,60})\**:\s*(.+)$/.exec(raw);
    const who = m ? byName.get(m[1]!.trim().toLowerCase()) : undefined;
    if (who === undefined || !m) continue;
    const to = req.members.length > 1 ? (who + 1) % req.members.length : who;
    out.push({ speaker: `e${who + 1}`, to: `e${to + 1}`, line: m[2]!.trim() });
  }
  return out;
}

/** The same scenario loop as the built-in engine; each timepoint's text comes from the model. */
export class OpenAIEngine implements SimulationEngine {
  readonly name = "openai";
  private readonly usdPerMillion: number;

  constructor(
    private readonly opts: OpenAIOptions,
    prices?: Record<string, number>,
  ) {
    this.usdPerMillion = pricePerMillion(opts.model, prices);
  }

  async run(spec: SimulationSpec, ctx: RunContext): Promise<RunOutcome> {
    const narrator: Narrator = {
      narrate: async (req) => {
        const { content, totalTokens } = await chatCompletion(this.opts, prompt(req));
        return { narrative: `${req.heading}\n${content.trim()}`, dialog: parseDialog(req, content), tokens: totalTokens };
      },
      // The summary is written locally from the final state: no call, no charge.
      summaryTokens: () => 0,
    };
    return runSimulation(spec, ctx, { narrator, usdPerMillion: this.usdPerMillion, model: this.opts.model });
  }
}
