import { cast, scenario, type Scenario } from "./types.ts";

/** Shared cast of the convergence templates: a resource negotiation that is easy to compare across runs. */
const NEGOTIATORS = cast(
  "Alma Reyes|water board chair|reach a fair allocation|fair,firm|0.2",
  "Boris Klein|farmers' delegate|secure irrigation rights|stubborn,practical|-0.6",
  "Chen Lu|city engineer|guarantee the city's supply|analytical,calm|0.6",
  "Dara Nwosu|environmental advocate|protect the river's flow|passionate,principled|-0.3",
  "Emil Sorensen|industry representative|keep the plant running|pragmatic,blunt|0.5",
  "Farah Aziz|state mediator|get any deal signed|patient,neutral|0.1",
  "Gil Moreau|tribal water council|honor senior rights|resolute,dignified|-0.5",
  "Hana Berg|hydrologist|keep the numbers honest|precise,reserved|0.0",
);

const negotiation = (title: string, talk: number): Scenario =>
  scenario({
    title,
    setting: "a county hall during a drought",
    question: "signing the water-sharing compact",
    cast: NEGOTIATORS,
    topics: ["the allocation formula", "the drought forecast", "senior water rights", "the river's minimum flow", "enforcement"],
    incidents: [
      "The reservoir level report comes in lower than feared.",
      "A farmers' protest gathers outside.",
      "The governor's office calls for a deal by Friday.",
    ],
    endState: "the compact is signed with a drought clause",
    talk,
  });

export const PERSONA: Record<string, Scenario> = {
  "convergence/simple": negotiation("Convergence: Simple", 4),
  "convergence/standard": negotiation("Convergence: Standard", 2),
  "convergence/comprehensive": negotiation("Convergence: Comprehensive", 2),
  "persona/agent1_regulatory_stress": scenario({
    title: "Regulatory Stress",
    setting: "a bank's compliance floor during an audit",
    question: "self-reporting the control failures",
    cast: cast(
      "Ruth Adler|chief compliance officer|pass the audit honestly|principled,strained|0.6",
      "Kyle Benton|head of trading|keep the desk's numbers|aggressive,charming|-0.7",
      "Maya Singh|internal auditor|document every gap|meticulous,quiet|0.4",
      "George Hale|regulator's examiner|find what is hidden|patient,probing|0.2",
    ),
    topics: ["the trade surveillance gaps", "the risk limits", "the remediation plan", "the audit trail", "the capital buffer"],
    incidents: ["An exception report goes missing.", "The examiner requests chat logs.", "A risk limit is breached overnight."],
    endState: "the bank fails the audit and faces a consent order",
    talk: 4,
  }),
  "persona/agent2_mission_failure": scenario({
    title: "Mission Failure",
    setting: "a satellite operations center after a critical fault",
    question: "attempting the risky recovery burn",
    cast: cast(
      "Tess Moreno|flight director|save the spacecraft|decisive,calm|0.5",
      "Ivan Petrov|guidance engineer|trust the numbers|exacting,blunt|-0.4",
      "Lucy Adeyemi|systems lead|protect the remaining hardware|careful,steady|-0.2",
      "Hal Brooks|program manager|answer to the agency|political,tense|0.3",
    ),
    topics: ["the attitude control fault", "the fuel margin", "the communication window", "the backup thruster", "the agency review"],
    incidents: ["Telemetry drops out for four minutes.", "The backup thruster reports a pressure spike.", "The agency asks for a decision within the hour."],
    endState: "the spacecraft is stabilized in a lower orbit",
    talk: 1,
    alternatives: 1,
  }),
  "persona/agent3_litigation_discovery": scenario({
    title: "Litigation Discovery",
    setting: "two law firms' document rooms",
    question: "settling before trial",
    cast: cast(
      "Alicia Ford|plaintiff's lead counsel|find the smoking gun|relentless,sharp|-0.5",
      "Daniel Kerr|defense counsel|narrow the discovery|methodical,cool|0.5",
      "Priya Nair|paralegal|keep the review on schedule|organized,observant|0.0",
      "Walter Greene|defendant's general counsel|contain the damage|guarded,tired|0.3",
    ),
    topics: ["the email archive", "privilege claims", "the deposition schedule", "the damages model", "the protective order"],
    incidents: ["A misfiled box of documents turns up.", "The judge grants a motion to compel.", "A witness's deposition is postponed."],
    endState: "the case settles on the eve of trial",
    talk: 4,
  }),
  "persona/agent3_litigation_portal": scenario({
    title: "Litigation Post-Mortem",
    setting: "a law firm reviewing a lost verdict",
    question: "taking the case to trial",
    cast: cast(
      "Alicia Ford|lead counsel|understand the loss|relentless,sharp|0.6",
      "Daniel Kerr|opposing counsel|defend the verdict|methodical,cool|-0.5",
      "Judge Elena Ruiz|trial judge|keep the record clean|stern,fair|0.0",
      "Marcus Bell|jury consultant|explain the jury|perceptive,candid|-0.2",
    ),
    topics: ["the expert testimony", "the jury selection", "the excluded exhibit", "the closing argument", "the settlement offer"],
    incidents: ["An exhibit is excluded on a technicality.", "The expert wilts under cross-examination.", "A settlement offer expires."],
    endState: "the jury returns a verdict for the defense",
    talk: 11,
  }),
  "persona/agent4_elk_migration": scenario({
    title: "Elk Migration",
    setting: "a mountain valley and its winter range",
    question: "opening the ranch corridor to the herd",
    cast: cast(
      "Lead Cow|matriarch of the elk herd|reach the winter range|wary,enduring|0.8",
      "Grey Pack|wolf pack|feed the pups|patient,opportunistic|0.0",
      "June Calder|rancher|keep the hay fields intact|practical,weathered|-0.7",
      "Sam Whitehorse|park ranger|keep the corridor open|steady,diplomatic|0.6",
    ),
    topics: ["the snow line", "the hay fields", "the migration corridor", "the calving grounds", "the wolf count"],
    incidents: ["An early snow closes the high pass.", "A fence goes down along the creek.", "The calving grounds green up early."],
    endState: "the herd winters in the valley with the corridor half open",
    phases: ["spring calving", "summer high country", "autumn rut", "winter range"],
    talk: 4,
  }),
};
