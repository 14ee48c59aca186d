import { cast, scenario, type Scenario } from "./types.ts";

/** Scenarios of the first half of the showcase catalog. */
export const SHOWCASE_A: Record<string, Scenario> = {
  "showcase/board_meeting": scenario({
    title: "Board Meeting", setting: "the boardroom of Larkspur Robotics",
    question: "accepting the acquisition offer",
    cast: cast(
      "Dana Okafor|founder and CEO|keep the company independent|driven,stubborn|-0.6",
      "Miles Brenner|lead investor|return the fund's money this year|calculating,impatient|0.7",
      "Priya Raman|CTO and co-founder|protect the engineering team|loyal,analytical|-0.2",
      "Helen Cho|independent director|keep the board out of court|cautious,principled|0.1",
      "Arturo Vidal|CFO|avoid a down round|precise,anxious|0.4",
    ),
    topics: ["the acquisition price", "the runway", "the engineering team's retention", "the down-round risk", "the board's fiduciary duty"],
    incidents: ["The acquirer raises its offer by ten percent.", "A key customer threatens to leave.", "The bank's term sheet arrives late.", "An employee petition lands on the table."],
    endState: "the board signs the acquisition under protest", talk: 3,
  }),
  "showcase/jefferson_dinner": scenario({
    title: "The Dinner Bargain", setting: "a candlelit dining room in New York, 1790",
    question: "trading the capital's location for the debt plan",
    cast: cast(
      "Thomas Jefferson|host and Secretary of State|bring the capital south|reserved,shrewd|0.2",
      "Alexander Hamilton|Treasury Secretary|pass federal assumption of state debts|brilliant,restless|0.8",
      "James Madison|congressman from Virginia|protect Virginia's interests|careful,principled|-0.5",
    ),
    topics: ["assumption of state debts", "the Potomac site", "Virginia's votes", "the Treasury's credit", "the union's survival"],
    incidents: ["A servant brings word that the House vote is deadlocked.", "Madison's letter from home is read aloud.", "The wine runs low as the hour grows late."],
    endState: "the bargain is struck and the capital goes to the Potomac", talk: 13,
  }),
  "showcase/hospital_crisis": scenario({
    title: "Hospital Surge", setting: "the emergency ward of St. Brennan's on a mass-casualty night",
    question: "diverting incoming ambulances",
    cast: cast(
      "Rosa Delgado|charge nurse|keep every patient seen|steady,blunt|0.5",
      "Dr. Ethan Park|chief resident|save the critical cases first|decisive,exhausted|-0.3",
    ),
    topics: ["triage order", "the trauma bays", "blood supply", "staff fatigue", "the diversion protocol"],
    incidents: ["A bus crash sends twelve more patients.", "The blood bank calls with a shortage.", "A second surgeon arrives from home.", "The power flickers in the west wing."],
    endState: "the ward is on diversion and two patients have been transferred out", talk: 7,
  }),
  "showcase/detective_prospection": scenario({
    title: "Detective Prospection", setting: "a rain-soaked precinct interview room",
    question: "naming the groundskeeper as the culprit",
    cast: cast(
      "Inspector Mara Quill|detective|find the culprit before the trail goes cold|methodical,dry|0.2",
      "Oliver Hart|key witness|stay out of trouble|nervous,observant|-0.4",
    ),
    topics: ["the muddy footprints", "the torn letter", "the missing hour", "the groundskeeper's alibi", "the locked gate"],
    incidents: ["The lab confirms the mud matches the garden.", "A second witness contradicts the timeline.", "The torn letter is pieced together."],
    endState: "the groundskeeper is charged on the strength of the footprints", talk: 10,
  }),
  "showcase/kami_shrine": scenario({
    title: "The Village Shrine", setting: "the village hall beside the old shrine",
    question: "moving the shrine for the new road",
    cast: cast(
      "Kenji Mori|shrine keeper|keep the shrine where it has stood for centuries|devout,gentle|-0.8",
      "Aiko Tanaka|village head|bring the road and its jobs|pragmatic,tired|0.6",
      "Hiroshi Sato|road engineer|finish the survey on time|precise,impatient|0.8",
      "Yumi Ishida|elder farmer|keep the peace in the village|wise,wry|-0.1",
    ),
    topics: ["the shrine's history", "the road's route", "the festival calendar", "the prefecture's money", "the young people leaving"],
    incidents: ["A storm knocks a branch onto the shrine roof.", "The prefecture offers money for a new site.", "Children leave offerings at the survey stakes."],
    endState: "the shrine is moved to the hill with a festival procession", talk: 9,
  }),
  "showcase/vc_pitch_forward": scenario({
    title: "Pitch Meeting", setting: "a glass-walled partner meeting room on Sand Hill Road",
    question: "leading the seed round",
    cast: cast(
      "Nadia Farouk|founder|close the round this month|charismatic,intense|0.9",
      "Leo Brandt|co-founder and engineer|keep the roadmap honest|quiet,rigorous|0.5",
      "Grace Whitfield|managing partner|find the fund's next breakout|sharp,skeptical|-0.3",
      "Sam Osei|associate|prove his diligence|eager,thorough|0.0",
    ),
    topics: ["market size", "the team's track record", "unit economics", "the competitive moat", "the valuation"],
    incidents: ["A competitor announces a similar product.", "The demo crashes for ten seconds.", "A reference customer calls in."],
    endState: "the partners pass but ask to stay in touch", talk: 5,
  }),
  "showcase/vc_pitch_branching": scenario({
    title: "Pitch Outcomes", setting: "a partner meeting where the term sheet is decided",
    question: "issuing a term sheet",
    cast: cast(
      "Nadia Farouk|founder|get a term sheet today|charismatic,intense|0.9",
      "Leo Brandt|co-founder|protect the equity split|rigorous,quiet|0.4",
      "Grace Whitfield|managing partner|avoid overpaying|skeptical,sharp|-0.3",
      "Victor Lang|partner|win a hot deal before rivals|bold,competitive|0.6",
      "Sam Osei|associate|defend his diligence memo|thorough,eager|0.1",
    ),
    topics: ["the valuation cap", "board seats", "the pro-rata rights", "the burn rate", "the rival fund's interest"],
    incidents: ["A rival fund sends a competing offer.", "The diligence memo flags a churn problem.", "The founders ask for a higher cap."],
    endState: "the firm issues a term sheet with a lower cap", talk: 6, alternatives: 2,
  }),
};
