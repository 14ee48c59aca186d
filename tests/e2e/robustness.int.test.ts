import { Stack } from "../support/stack.ts";

/** Odd but possible client input never produces a 500: every answer is a contract error or success. */
describe("odd input never yields a 500", () => {
  const stack = new Stack({ workers: [1], adminToken: "robust-admin-token-0123456789abcdef01" });
  let key: string;
  beforeAll(async () => {
    await stack.start();
    key = (await stack.env.user("odd", "pro")).key;
  });
  afterAll(() => stack.stop());

  const bodies: unknown[] = [
    [],
    "just a string",
    42,
    null,
    true,
    { simulations: "nope" },
    { simulations: [null] },
    { simulations: [[]] },
    { simulations: [{ template_id: 7 }] },
    { simulations: [{ template_id: "" }] },
    { simulations: [{ description: "   " }] },
    { simulations: [{ template_id: "board_meeting", config: [] }] },
    { simulations: [{ template_id: "board_meeting", config: { seed: -1 } }] },
    { simulations: [{ template_id: "board_meeting", metadata: { big: "x".repeat(17_000) } }] },
    { simulations: [{ template_id: "board_meeting", export_formats: ["docx"] }] },
    { simulations: [{ template_id: "board_meeting", temporal_mode: "SIDEWAYS" }] },
    { simulations: [{ template_id: "test/scripted", config: { steps: 0 } }] },
    { simulations: [{ template_id: "test/scripted", config: { steps: 2, fail_at_step: 5 } }] },
    { simulations: [{ template_id: "board_meeting" }], budget_cap_usd: -1 },
    { simulations: [{ template_id: "board_meeting" }], budget_cap_usd: "1" },
    { simulations: [{ template_id: "board_meeting" }], priority: Number.POSITIVE_INFINITY },
    { simulations: [{ template_id: "board_meeting" }], parallel_jobs: 1.5 },
    { simulations: [{ template_id: "board_meeting" }], metadata: "m" },
    { simulations: [{ template_id: "board_meeting" }], fail_fast: "true" },
    { template_id: { $ne: null } },
    { template_id: "board_meeting", entity_count: 2 ** 53 },
    { description: "\u0000\uffff" },
  ];

  it("answers 4xx (or 202) with the error body for odd bodies on every POST route", async () => {
    // What each route answers: creates validate every body (one of them is a valid batch: a
    // priority of Infinity is null in JSON, i.e. the default); cancels validate their small body
    // (an array, a string, a number, null, true or a non-object is 422) and then find no such id (404).
    const cancel = (i: number) => (i < 5 || i === bodies.length - 1 ? 422 : 404);
    const expected: Record<string, (i: number) => number> = {
      "/simulations": () => 422,
      "/simulations/batch": (i) => (bodies[i] && typeof bodies[i] === "object" && "priority" in (bodies[i] as object) ? 202 : 422),
      "/simulations/sim_000000000000/cancel": cancel,
      "/simulations/batch/batch_000000000000/cancel": cancel,
    };
    for (const [path, want] of Object.entries(expected)) {
      for (const [i, body] of bodies.entries()) {
        const res = await stack.http().post(path).set("X-API-Key", key).set("Content-Type", "application/json").send(JSON.stringify(body));
        expect({ path, body, status: res.status }).toEqual({ path, body, status: want(i) });
        if (res.status >= 400) expect(typeof res.body.error).toBe("string");
      }
    }
  });

  it("refuses NUL characters (Postgres cannot store them) with 422 naming where they are", async () => {
    const res = await stack
      .http()
      .post("/simulations/batch")
      .set("X-API-Key", key)
      .send({ simulations: [{ template_id: "board_meeting", metadata: { note: "a\u0000b" } }] });
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual([{ path: "simulations.0.metadata.note", message: "must not contain NUL (\\u0000) characters" }]);
  });

  it("refuses unpaired UTF-16 surrogates (no UTF-8 text holds them) with 422 naming where they are, on every body route", async () => {
    const post = (path: string, raw: string, admin = false) => {
      const req = stack.http().post(path).set("Content-Type", "application/json");
      return (admin ? req.set("Authorization", "Bearer robust-admin-token-0123456789abcdef01") : req.set("X-API-Key", key)).send(raw);
    };
    const lone = "a\\ud800b"; // the JSON escape, as a client that cut a pair in two would send it
    const cases: [string, string, string, boolean?][] = [
      ["/simulations", `{"description":"${lone}"}`, "description"],
      ["/simulations", `{"template_id":"board_meeting","metadata":{"${lone}":1}}`, `metadata.a\ud800b`],
      ["/simulations/batch", `{"simulations":[{"template_id":"board_meeting"}],"metadata":{"note":"\\udc00"}}`, "metadata.note"],
      ["/simulations/batch/batch_000000000000/cancel", `{"reason":"${lone}"}`, "reason"],
      ["/admin/users/odd/api-keys", `{"name":"${lone}"}`, "name", true],
      ["/admin/users/odd/usage-adjustments", `{"reason":"${lone}","api_calls":1}`, "reason", true],
    ];
    for (const [path, raw, field, admin] of cases) {
      const res = await post(path, raw, admin);
      expect({ path, status: res.status, detail: res.body.detail }).toEqual({
        path,
        status: 422,
        detail: [{ path: field, message: expect.stringContaining("unpaired UTF-16 surrogates") }],
      });
    }
    // A pair written as two escapes is one character, and is stored and echoed as such.
    const ok = await post("/simulations", `{"template_id":"board_meeting","metadata":{"note":"\\ud83d\\ude00"}}`);
    expect({ status: ok.status, note: ok.body.metadata?.note }).toEqual({ status: 202, note: "\u{1F600}" });
  });

  it("refuses a body that is not UTF-8 with 422, rather than storing U+FFFD in place of its bytes", async () => {
    const raw = Buffer.concat([Buffer.from('{"template_id":"board_meeting","metadata":{"note":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]);
    // serialize() as is: superagent would send a Buffer under a JSON type as {"type":"Buffer",...}.
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", key)
      .set("Content-Type", "application/json")
      .serialize((b: unknown) => b as string)
      .send(raw);
    expect({ status: res.status, detail: res.body.detail }).toEqual({ status: 422, detail: [{ path: "", message: "Request body is not valid UTF-8" }] });
  });

  it("refuses the key __proto__, which would otherwise vanish from the stored metadata, with 422", async () => {
    const raw = `{"template_id":"board_meeting","metadata":{"__proto__":{"x":1},"kept":true}}`;
    const res = await stack.http().post("/simulations").set("X-API-Key", key).set("Content-Type", "application/json").send(raw);
    expect({ status: res.status, detail: res.body.detail }).toEqual({
      status: 422,
      detail: [{ path: "metadata.__proto__", message: "__proto__ is a reserved key" }],
    });
  });

  it("answers OPTIONS as any method a path does not take: 405 with Allow on a known path, 404 elsewhere, before auth", async () => {
    const known = await stack.http().options("/simulations/batch");
    expect({ status: known.status, error: known.body.error, allow: known.headers.allow, type: known.headers["content-type"] }).toEqual({
      status: 405,
      error: "MethodNotAllowed",
      allow: "POST, GET",
      type: expect.stringContaining("application/json"),
    });
    const unknown = await stack.http().options("/nothing/here");
    expect({ status: unknown.status, error: unknown.body.error }).toEqual({ status: 404, error: "NotFound" });
  });

  it("refuses a query parameter given twice with 422 rather than ignoring the filter", async () => {
    for (const path of [
      "/simulations/templates?category=persona&category=persona",
      "/simulations?status=RUNNING&status=PENDING",
      "/simulations/batch?page=1&page=2",
      "/simulations/batch/batch_000000000000/report?format=csv&format=json",
    ]) {
      const res = await stack.http().get(path).set("X-API-Key", key);
      expect({ path, status: res.status, messages: (res.body.detail ?? []).map((d: { message: string }) => d.message) }).toEqual({
        path,
        status: 422,
        messages: ["must be given once"],
      });
    }
    const dry = await stack
      .http()
      .post("/simulations/batch?dry_run=true&dry_run=true")
      .set("X-API-Key", key)
      .send({ simulations: [{ template_id: "board_meeting" }] });
    expect({ status: dry.status, detail: dry.body.detail }).toEqual({ status: 422, detail: [{ path: "dry_run", message: "must be given once" }] });
    // status_filter is status's alias: naming two statuses through both is refused too; the same one twice is fine.
    const both = await stack.http().get("/simulations?status=completed&status_filter=cancelled").set("X-API-Key", key);
    expect({ status: both.status, detail: both.body.detail }).toEqual({
      status: 422,
      detail: [{ path: "status_filter", message: "is an alias of status and names another status: give one of them" }],
    });
    expect((await stack.http().get("/simulations?status=completed&status_filter=COMPLETED").set("X-API-Key", key)).status).toBe(200);
    const one = await stack.http().get("/simulations/templates?category=%20Persona%20").set("X-API-Key", key);
    expect(one.status).toBe(200);
    expect(new Set(one.body.templates.map((t: { category: string }) => t.category))).toEqual(new Set(["persona"]));
  });

  it("names the rule, not a number's safe-integer bound, for huge integers", async () => {
    const page = await stack.http().get("/simulations?page=99999999999999999999").set("X-API-Key", key);
    expect(page.body.detail).toEqual([{ path: "page", message: "must be an integer 1..1000000" }]);
    const adjust = await stack
      .http()
      .post("/admin/users/odd/usage-adjustments")
      .set("Authorization", "Bearer robust-admin-token-0123456789abcdef01")
      .set("Content-Type", "application/json")
      .send('{"reason":"r","api_calls":1e300}');
    expect({ status: adjust.status, detail: adjust.body.detail }).toEqual({
      status: 422,
      detail: [{ path: "api_calls", message: "must be an integer from -1000000000 to 1000000000" }],
    });
  });

  it("refuses a priority word that is an Object.prototype key (constructor, __proto__) with 422, on create and dry run", async () => {
    for (const priority of ["constructor", "__proto__", "CONSTRUCTOR", "hasOwnProperty"]) {
      for (const path of ["/simulations/batch", "/simulations/batch?dry_run=true"]) {
        const res = await stack
          .http()
          .post(path)
          .set("X-API-Key", key)
          .send({ simulations: [{ template_id: "board_meeting" }], priority });
        expect({ priority, path, status: res.status, detail: res.body.detail }).toEqual({
          priority,
          path,
          status: 422,
          detail: [{ path: "priority", message: "must be an integer 0..100 or one of low, normal, high" }],
        });
      }
    }
  });

  it("names every wrong field of a batch at once: its own and each simulation's", async () => {
    const res = await stack
      .http()
      .post("/simulations/batch")
      .set("X-API-Key", key)
      .send({
        simulations: [{ template_id: "board_meeting", entity_count: "2" }, { template_id: "x" }, { description: 5 }],
        priority: "zz",
        parallel_jobs: -1,
      });
    expect(res.status).toBe(422);
    expect(res.body.detail.map((d: { path: string }) => d.path).sort()).toEqual([
      "parallel_jobs",
      "priority",
      "simulations.0.entity_count",
      "simulations.1.template_id",
      "simulations.2.description",
    ]);
    // Within one simulation too: a wrong count does not hide an unknown template or a wrong config key.
    const within = await stack
      .http()
      .post("/simulations/batch")
      .set("X-API-Key", key)
      .send({
        simulations: [
          { template_id: "board_meeting" },
          { entity_count: 0, template_id: "nope" },
          { timepoint_count: 99, template_id: "board_meeting", config: { seed: -1 } },
        ],
      });
    expect(within.status).toBe(422);
    expect(within.body.detail.map((d: { path: string }) => d.path).sort()).toEqual([
      "simulations.1.entity_count",
      "simulations.1.template_id",
      "simulations.2.config.seed",
      "simulations.2.timepoint_count",
    ]);
    const single = await stack.http().post("/simulations").set("X-API-Key", key).send({ entity_count: 0, template_id: "nope" });
    expect(single.status).toBe(422);
    expect(single.body.detail.map((d: { path: string }) => d.path).sort()).toEqual(["entity_count", "template_id"]);
  });

  it("refuses numbers past a double's range (1e400) with 422 where they are, rather than storing null", async () => {
    for (const [path, raw, field] of [
      ["/simulations", '{"description":"x","metadata":{"big":1e400}}', "metadata.big"],
      ["/simulations/batch", '{"simulations":[{"template_id":"board_meeting"}],"metadata":{"n":-1e400}}', "metadata.n"],
    ]) {
      const res = await stack.http().post(path!).set("X-API-Key", key).set("Content-Type", "application/json").send(raw!);
      expect({ path, status: res.status, detail: res.body.detail }).toEqual({
        path,
        status: 422,
        detail: [{ path: field, message: expect.stringContaining("out of range") }],
      });
    }
  });

  it("answers a path holding NUL (%00) with 404 before auth, never a 500 from Postgres", async () => {
    const bearer = "Bearer robust-admin-token-0123456789abcdef01";
    const job = await stack.http().post("/simulations").set("X-API-Key", key).send({ template_id: "board_meeting" });
    expect(job.status).toBe(202);
    const cases: [string, string, unknown?][] = [
      ["get", `/simulations/${job.body.job_id}/exports/%00`],
      ["get", "/simulations/templates/a%00b"],
      ["patch", "/admin/users/a%00b", { tier: "pro" }],
      ["post", "/admin/users/a%00b/api-keys", {}],
      ["post", "/admin/users/a%00b/usage-adjustments", { api_calls: 1, reason: "x" }],
      ["delete", "/admin/api-keys/key_%00"],
    ];
    for (const [method, path, body] of cases) {
      const req = stack
        .http()
        [method as "get"](path)
        .set(path.startsWith("/admin") ? "Authorization" : "X-API-Key", path.startsWith("/admin") ? bearer : key);
      const res = await (body === undefined ? req : req.send(body as object));
      expect({ path, status: res.status, error: res.body.error }).toEqual({ path, status: 404, error: "NotFound" });
    }
    const anonymous = await stack.http().get("/simulations/sim_%00");
    expect(anonymous.status).toBe(404);
  });

  it("tells exactly one of concurrent creates of a new user that it created it (201), the others 200", async () => {
    const statuses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        stack
          .http()
          .post("/admin/users")
          .set("Authorization", "Bearer robust-admin-token-0123456789abcdef01")
          .send({ user_id: "raced", tier: i % 2 ? "pro" : "basic" })
          .then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(7);
  });

  it("refuses bodies nested deeper than 32 levels, however deep, with 422", async () => {
    for (const depth of [40, 30_000]) {
      const raw = `{"template_id":"board_meeting","metadata":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
      const res = await stack.http().post("/simulations").set("X-API-Key", key).set("Content-Type", "application/json").send(raw);
      expect({ depth, status: res.status }).toEqual({ depth, status: 422 });
    }
  });

  it("answers 4xx for odd query strings and ids", async () => {
    const gets = [
      "/simulations?page=-1",
      "/simulations?page=1e3",
      "/simulations?page_size=abc",
      "/simulations?status=done",
      "/simulations?status[]=x",
      "/simulations?page=99999999999999999999",
      "/simulations/batch?status=PARTIAL&page=2",
      "/simulations/batch/usage/history?periods=0",
      "/simulations/batch/usage/history?periods=25",
      "/simulations/batch/usage/history?periods=x",
      "/simulations/%E0%A4%A",
      "/simulations/sim_zzzzzzzzzzzz",
      "/simulations/batch/not-a-batch",
      "/simulations/batch/batch_000000000000/jobs",
      "/simulations/templates/..%2F..%2Fetc",
      "/simulations/sim_000000000000/exports/..",
      "/simulations/sim_000000000000/result",
    ];
    // Malformed values are 422; ids of the wrong shape or of nothing, and paths that do not
    // decode, are 404; a parameter the route does not take (status[]) is ignored like any unknown one.
    const want: Record<string, number> = {
      "/simulations/%E0%A4%A": 404,
      "/simulations?status[]=x": 200,
      "/simulations/batch?status=PARTIAL&page=2": 200,
      "/simulations/sim_zzzzzzzzzzzz": 404,
      "/simulations/batch/not-a-batch": 404,
      "/simulations/batch/batch_000000000000/jobs": 404,
      "/simulations/templates/..%2F..%2Fetc": 404,
      "/simulations/sim_000000000000/exports/..": 404,
      "/simulations/sim_000000000000/result": 404,
    };
    for (const path of gets) {
      const res = await stack.http().get(path).set("X-API-Key", key);
      expect({ path, status: res.status }).toEqual({ path, status: want[path] ?? 422 });
    }
  });

  it("answers a path that does not decode with 404 before auth, as the order of checks puts routes first", async () => {
    for (const path of ["/simulations/%ZZ", "/simulations/templates/%ZZ", "/simulations/sim_000000000000/exports/%ZZ"]) {
      const res = await stack.http().get(path);
      expect({ path, status: res.status, error: res.body.error }).toEqual({ path, status: 404, error: "NotFound" });
      expect(res.body.message).toMatch(/percent-encoding/);
      expect(res.headers["x-request-id"]).toMatch(/^req_/);
    }
  });

  it("tells an unreadable body (unsupported Content-Encoding) after auth, with a message naming it", async () => {
    const post = (withKey: boolean, encoding: string, body: Buffer | string) => {
      const req = stack.http().post("/simulations").set("Content-Type", "application/json").set("Content-Encoding", encoding);
      return (withKey ? req.set("X-API-Key", key) : req).send(body);
    };
    const json = JSON.stringify({ template_id: "board_meeting" });
    expect((await post(false, "zstd", json)).status).toBe(401);
    const zstd = await post(true, "zstd", json);
    expect({ status: zstd.status, error: zstd.body.error, detail: zstd.body.detail }).toEqual({
      status: 422,
      error: "ValidationError",
      detail: [{ path: "", message: expect.stringContaining('Unsupported Content-Encoding "zstd"') }],
    });
    const notGzip = await post(true, "gzip", json);
    expect({ status: notGzip.status, detail: notGzip.body.detail }).toEqual({
      status: 422,
      detail: [{ path: "", message: expect.stringContaining("it is not valid gzip data") }],
    });
  });

  it("lists each wrong field once, with the message of what is wrong with it", async () => {
    const res = await stack
      .http()
      .post("/simulations")
      .set("X-API-Key", key)
      .set("Content-Type", "application/json")
      // Sent as text: a number past 2^53, which fails both the safe-integer and the range check.
      .send(`{"template_id":"board_meeting","export_formats":"json","entity_count":99999999999999999999999}`);
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual([
      { path: "entity_count", message: expect.any(String) },
      { path: "export_formats", message: expect.stringContaining("expected array") },
    ]);
  });

  it("answers 4xx for odd admin input", async () => {
    const admin = (p: string, body: unknown, method: "post" | "patch" = "post") =>
      stack
        .http()
        [method](p)
        .set("Authorization", "Bearer robust-admin-token-0123456789abcdef01")
        .set("Content-Type", "application/json")
        .send(JSON.stringify(body));
    for (const [p, body, method] of [
      ["/admin/users", { user_id: "" }],
      ["/admin/users", { user_id: "a b" }],
      ["/admin/users", { user_id: "x", tier: "gold" }],
      ["/admin/users/nobody", { tier: "pro" }, "patch"],
      ["/admin/users/odd", { tier: 3 }, "patch"],
      ["/admin/users/nobody/api-keys", {}],
      ["/admin/users/odd/usage-adjustments", { reason: "r", cost_usd: 1e12 }],
      ["/admin/users/odd/usage-adjustments", { reason: "r", period: "2026-1", tokens: 1 }],
    ] as [string, unknown, "post" | "patch" | undefined][]) {
      const res = await admin(p, body, method ?? "post");
      expect({ p, body, status: res.status >= 400 && res.status < 500 }).toEqual({ p, body, status: true });
    }
  });
});
