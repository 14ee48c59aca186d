import fc from "fast-check";
import { ERROR_STATUS } from "@simbatch/errors";
import { Stack } from "../support/stack.ts";

/**
 * Property-based tests over the request schemas, against the real app: whatever
 * body or query the generators make, the answer is a 2xx or a 4xx with the
 * contract's error body, never a 5xx.
 */

const CODES = new Set(Object.keys(ERROR_STATUS));
const KNOWN_CONFIG_KEYS = new Set(["seed", "steps", "step_ms", "cost_usd_per_step", "tokens_per_step", "fail_at_step", "estimate_usd"]);

interface Answer {
  status: number;
  body: any;
  text: string;
}

function checkAnswer(what: unknown, res: Answer): void {
  const fail = (why: string) => {
    throw new Error(`${why}: ${res.status} ${res.text.slice(0, 300)} for ${JSON.stringify(what).slice(0, 300)}`);
  };
  if (res.status >= 500) fail("5xx");
  if (res.status < 200 || (res.status >= 300 && res.status < 400)) fail("unexpected status");
  if (res.status < 300) return;
  const b = res.body;
  if (!b || typeof b !== "object") fail("error without a JSON body");
  if (!CODES.has(b.error) || ERROR_STATUS[b.error as keyof typeof ERROR_STATUS] !== res.status) fail("error code does not match the status");
  if (typeof b.message !== "string" || b.message.length === 0) fail("no message");
  if (!("detail" in b) || (b.detail !== null && typeof b.detail !== "object")) fail("detail must be an array, object or null");
  if (typeof b.request_id !== "string" || b.request_id.length === 0) fail("no request_id");
  if (b.error === "ValidationError") {
    if (!Array.isArray(b.detail)) fail("422 detail must be a list");
    for (const d of b.detail) if (typeof d?.path !== "string" || typeof d?.message !== "string") fail("422 detail items are {path, message}");
  }
}

// ---- generators -----------------------------------------------------------

const longString = fc.integer({ min: 1_000, max: 20_000 }).map((n) => "é€x".repeat(Math.ceil(n / 3)).slice(0, n));
const nulString = fc.tuple(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })).map(([a, b]) => `${a}\u0000${b}`);
const weirdString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 30 }),
  nulString,
  longString,
  fc.constantFrom(
    "",
    " ",
    "\t\n",
    "0",
    "-1",
    "1e3",
    "true",
    "null",
    "__proto__",
    "constructor",
    "board_meeting ",
    "BOARD_MEETING",
    "showcase/",
    "/",
    "../..",
    "%00",
    "Ω≈ç√",
  ),
);
const hugeNumber = fc.constantFrom(2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308, Number.MIN_VALUE, -0, 0.5, 1.0000001, 99999999999);
const weirdNumber = fc.oneof(fc.integer(), fc.double({ noNaN: false }), hugeNumber);
/** Nested arrays/objects from 1 to 45 levels: around the 32-level body limit. */
const deep = fc.integer({ min: 1, max: 45 }).chain((depth) =>
  fc.boolean().map((arr) => {
    let v: unknown = "leaf";
    for (let i = 0; i < depth; i++) v = arr ? [v] : { k: v };
    return v;
  }),
);
const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: weirdString },
  { weight: 2, arbitrary: weirdNumber },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { $ne: null }) },
);
/** A field that is usually valid, sometimes wrong. */
const near = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: weirdValue });
const unknownKeys = fc.dictionary(
  fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: weirdString },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "prototype", "toString") },
  ),
  fc.oneof({ weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 1, arbitrary: weirdValue }),
  { maxKeys: 3 },
);

const templateId = fc.constantFrom(
  "board_meeting",
  "showcase/board_meeting",
  "crisis_response",
  "test/scripted",
  "scripted",
  "convergence/simple",
  "nope",
  "SHOWCASE/BOARD_MEETING",
);
const runConfig = fc
  .record(
    {
      seed: near(fc.nat()),
      steps: near(fc.integer({ min: 1, max: 3 })),
      step_ms: near(fc.constant(0)),
      cost_usd_per_step: near(fc.double({ min: 0, max: 0.01, noNaN: true })),
      fail_at_step: near(fc.constant(null)),
      estimate_usd: near(fc.constant(0.001)),
    },
    { requiredKeys: [] },
  )
  .chain((known) => unknownKeys.map((extra) => ({ ...extra, ...known })));

const simulationRequest = fc
  .record(
    {
      template_id: near(templateId),
      description: near(fc.string({ maxLength: 50 })),
      entity_count: near(fc.integer({ min: 1, max: 20 })),
      timepoint_count: near(fc.integer({ min: 1, max: 20 })),
      temporal_mode: near(fc.constantFrom("FORWARD", "portal", "Branching", "DIRECTORIAL", "cyclical")),
      config: near(runConfig),
      generate_summaries: near(fc.boolean()),
      export_formats: near(fc.array(fc.constantFrom("json", "markdown", "PDF", "docx"), { maxLength: 4 })),
      metadata: near(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })),
    },
    { requiredKeys: [] },
  )
  .chain((req) => unknownKeys.map((extra) => ({ ...extra, ...req })));

const batchRequest = fc
  .record(
    {
      simulations: near(fc.array(near(simulationRequest), { minLength: 0, maxLength: 4 })),
      parallel_jobs: near(fc.integer({ min: 1, max: 100 })),
      fail_fast: near(fc.boolean()),
      budget_cap_usd: near(fc.double({ min: 0.001, max: 1_000_000, noNaN: true })),
      priority: near(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom("low", "NORMAL", "High", "urgent"))),
      metadata: near(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })),
    },
    { requiredKeys: [] },
  )
  .chain((req) => unknownKeys.map((extra) => ({ ...extra, ...req })));

const cancelRequest = fc
  .record({ reason: near(fc.string({ maxLength: 600 })), cancel_running: near(fc.boolean()) }, { requiredKeys: [] })
  .chain((req) => unknownKeys.map((extra) => ({ ...extra, ...req })));

/** JSON text, or text that is almost JSON: numbers past double range, truncation, garbage, non-objects. */
const rawBody = (structured: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 10, arbitrary: structured.map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '{"entity_count": 1e400}',
        '{"template_id":"board_meeting","config":{"seed":1e999}}',
        '{"simulations":[{"template_id":"board_meeting","entity_count":-1e400}]}',
        '{"a":',
        "{'a':1}",
        "",
        "   ",
        "null",
        "[]",
        '"str"',
        "\u0000",
        '{"template_id":"board_meeting"}garbage',
        '{"__proto__":{"polluted":1},"template_id":"board_meeting"}',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    { weight: 1, arbitrary: structured.map((v) => JSON.stringify(v)).chain((s) => fc.nat({ max: Math.max(0, s.length - 1) }).map((n) => s.slice(0, n))) },
  );

const queryValue = fc.oneof(
  fc.constantFrom(
    "",
    "1",
    "20",
    "100",
    "101",
    "0",
    "-1",
    "1.5",
    "1e3",
    "99999999999999999999",
    "running",
    "COMPLETED",
    "Partial",
    "done",
    "%",
    "%00",
    "%E0%A4%A",
  ),
  fc.string({ unit: "binary", maxLength: 20 }).map(encodeURIComponent),
  fc.nat().map(String),
);
const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom("status", "status_filter", "page", "page_size", "status[]", "page[a]", "periods"),
        fc.string({ maxLength: 6 }).map(encodeURIComponent),
      ),
      queryValue,
    ),
    { maxLength: 5 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join("&"));

const jobId = fc.oneof(fc.constantFrom("sim_000000000000", "SIM_ZZZ", "%20", "sim_"), fc.string({ maxLength: 20 }).map(encodeURIComponent));
const batchId = fc.oneof(fc.constantFrom("batch_000000000000", "stats", "usage", "%2e%2e"), fc.string({ maxLength: 20 }).map(encodeURIComponent));

// ---- properties -----------------------------------------------------------

describe("request schemas never answer 5xx (fast-check, against the real app)", () => {
  // No workers: admitted jobs stay pending, which keeps the file fast and every cancel path open.
  const stack = new Stack({ workers: [] });
  let key: string;
  const ids = { jobs: [] as string[], batches: [] as string[] };
  const RUNS = { numRuns: 120, interruptAfterTimeLimit: 4_000, markInterruptAsFailure: false };

  beforeAll(async () => {
    await stack.start();
    key = (await stack.env.user("fuzz", "enterprise")).key;
    const job = await stack.http().post("/simulations").set("X-API-Key", key).send({ template_id: "board_meeting" });
    const batch = await stack.submitBatch(key, { simulations: [{ template_id: "board_meeting" }] });
    ids.jobs.push(job.body.job_id);
    ids.batches.push(batch.body.batch_id);
  }, 60_000);
  afterAll(() => stack.stop());

  const post = async (path: string, body: string): Promise<Answer> => {
    const res = await stack.http().post(path).set("X-API-Key", key).set("Content-Type", "application/json").send(body);
    return { status: res.status, body: res.body, text: res.text ?? "" };
  };
  const get = async (path: string): Promise<Answer> => {
    const res = await stack.http().get(path).set("X-API-Key", key);
    return { status: res.status, body: res.body, text: res.text ?? "" };
  };

  it("POST /simulations", async () => {
    await fc.assert(
      fc.asyncProperty(rawBody(simulationRequest), async (body) => {
        const res = await post("/simulations", body);
        checkAnswer(body, res);
        if (res.status === 202) {
          if (res.body.config !== null && typeof res.body.config === "object") {
            for (const k of Object.keys(res.body.config)) if (!KNOWN_CONFIG_KEYS.has(k)) throw new Error(`unknown config key ${k} echoed`);
          }
          ids.jobs.push(res.body.job_id);
        }
      }),
      RUNS,
    );
  });

  it("POST /simulations/batch", async () => {
    await fc.assert(
      fc.asyncProperty(rawBody(batchRequest), fc.boolean(), async (body, dryRun) => {
        const res = await post(`/simulations/batch${dryRun ? "?dry_run=true" : ""}`, body);
        checkAnswer(body, res);
        if (res.status === 202) ids.batches.push(res.body.batch_id);
      }),
      RUNS,
    );
  });

  it("POST /simulations/{job_id}/cancel", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant(null), jobId), fc.nat(), rawBody(cancelRequest), async (id, pick, body) => {
        const target = id ?? ids.jobs[pick % ids.jobs.length]!;
        checkAnswer({ target, body }, await post(`/simulations/${target}/cancel`, body));
      }),
      RUNS,
    );
  });

  it("POST /simulations/batch/{batch_id}/cancel", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant(null), batchId), fc.nat(), rawBody(cancelRequest), async (id, pick, body) => {
        const target = id ?? ids.batches[pick % ids.batches.length]!;
        checkAnswer({ target, body }, await post(`/simulations/batch/${target}/cancel`, body));
      }),
      RUNS,
    );
  });

  it("GET list queries", async () => {
    const lists = fc.constantFrom("/simulations", "/simulations/batch", "/simulations/batch/usage/history", "/simulations/templates");
    await fc.assert(
      fc.asyncProperty(lists, queryString, async (path, qs) => {
        const res = await get(`${path}?${qs}`);
        checkAnswer({ path, qs }, res);
        if (res.status === 200 && path === "/simulations") {
          if (!Array.isArray(res.body.jobs) || res.body.page_size > 100 || res.body.page < 1) throw new Error(`bad page for ${qs}: ${res.text.slice(0, 200)}`);
        }
      }),
      { ...RUNS, numRuns: 150 },
    );
  });
});
