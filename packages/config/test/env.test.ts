import {
  ApiEnvSchema,
  ApiEnvSchemaChecked,
  CommonEnvSchema,
  ConfigError,
  effectiveRedisPrefix,
  parseEnv,
  parseTierLimits,
  ReconcilerEnvSchema,
  WorkerEnvSchemaChecked,
} from "../src/index.ts";

describe("parseEnv", () => {
  it("applies the documented defaults", () => {
    const env = parseEnv(ApiEnvSchema, {});
    expect(env).toMatchObject({
      PORT: 8080,
      DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/simbatch",
      REDIS_URL: "redis://127.0.0.1:6379",
      RATE_LIMIT_ENABLED: true,
    });
    expect(env.ADMIN_TOKEN).toBeUndefined();
  });

  it("names the bad keys and never echoes their values", () => {
    let err: unknown;
    try {
      parseEnv(ApiEnvSchema, { PORT: "eighty", REDIS_URL: "not a url with secret-value" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).keys.sort()).toEqual(["PORT", "REDIS_URL"]);
    expect((err as Error).message).not.toContain("secret-value");
  });

  it("gives the worker its documented defaults and parses price overrides", () => {
    const env = parseEnv(WorkerEnvSchemaChecked, { MODEL_PRICES_JSON: '{"my-model": 1.25}' });
    expect(env).toMatchObject({ SIM_STEP_MS: 300, WORKER_CONCURRENCY: 4, ENGINE: "builtin", JOB_LOCK_MS: 30_000 });
    expect(env.MODEL_PRICES_JSON).toEqual({ "my-model": 1.25 });
    expect(() => parseEnv(WorkerEnvSchemaChecked, { MODEL_PRICES_JSON: "{not json" })).toThrow(/MODEL_PRICES_JSON/);
    expect(() => parseEnv(WorkerEnvSchemaChecked, { MODEL_PRICES_JSON: '{"m": -1}' })).toThrow(/MODEL_PRICES_JSON/);
  });

  it("refuses an ADMIN_TOKEN shorter than 32 characters, naming the key and never the value", () => {
    for (const schema of [ApiEnvSchema, ApiEnvSchemaChecked]) {
      let err: unknown;
      try {
        parseEnv(schema, { ADMIN_TOKEN: "change-me-admin-token" });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).keys).toEqual(["ADMIN_TOKEN"]);
      expect((err as Error).message).toContain("ADMIN_TOKEN");
      expect((err as Error).message).toContain("32");
      expect((err as Error).message).not.toContain("change-me");
    }
    expect(() => parseEnv(ApiEnvSchemaChecked, { ADMIN_TOKEN: "x".repeat(31) })).toThrow(/ADMIN_TOKEN/);
    expect(parseEnv(ApiEnvSchemaChecked, { ADMIN_TOKEN: "x".repeat(32) }).ADMIN_TOKEN).toBe("x".repeat(32));
  });

  it("gives the HTTP server bounded timeouts by default, overridable, headers within request", () => {
    const env = parseEnv(ApiEnvSchemaChecked, {});
    expect(env).toMatchObject({
      HTTP_HEADERS_TIMEOUT_MS: 10_000,
      HTTP_REQUEST_TIMEOUT_MS: 30_000,
      HTTP_KEEP_ALIVE_TIMEOUT_MS: 5_000,
      ADMIN_AUTH_MAX_FAILURES: 10,
      ADMIN_AUTH_WINDOW_MS: 900_000,
    });
    expect(parseEnv(ApiEnvSchemaChecked, { HTTP_REQUEST_TIMEOUT_MS: "120000", HTTP_KEEP_ALIVE_TIMEOUT_MS: "65000" })).toMatchObject({
      HTTP_REQUEST_TIMEOUT_MS: 120_000,
      HTTP_KEEP_ALIVE_TIMEOUT_MS: 65_000,
    });
    expect(() => parseEnv(ApiEnvSchemaChecked, { HTTP_HEADERS_TIMEOUT_MS: "40000", HTTP_REQUEST_TIMEOUT_MS: "30000" })).toThrow(/HTTP_HEADERS_TIMEOUT_MS/);
    expect(() => parseEnv(ApiEnvSchemaChecked, { HTTP_REQUEST_TIMEOUT_MS: "0" })).toThrow(/HTTP_REQUEST_TIMEOUT_MS/);
  });

  it("caps a job's attempts (MAX_JOB_ATTEMPTS, default 5) and takes the sweep's repair timeouts", () => {
    expect(parseEnv(WorkerEnvSchemaChecked, {}).MAX_JOB_ATTEMPTS).toBe(5);
    expect(parseEnv(WorkerEnvSchemaChecked, { MAX_JOB_ATTEMPTS: "2" }).MAX_JOB_ATTEMPTS).toBe(2);
    for (const bad of ["0", "-1", "two", "1.5", "101"]) expect(() => parseEnv(WorkerEnvSchemaChecked, { MAX_JOB_ATTEMPTS: bad })).toThrow(/MAX_JOB_ATTEMPTS/);
    expect(parseEnv(ReconcilerEnvSchema, {})).toMatchObject({ REPAIR_AFTER_MS: 60_000, EVENT_CLAIM_IDLE_MS: 30_000 });
    expect(() => parseEnv(ReconcilerEnvSchema, { REPAIR_AFTER_MS: "soon" })).toThrow(/REPAIR_AFTER_MS/);
  });

  it("needs an API key for the openai engine", () => {
    expect(() => parseEnv(WorkerEnvSchemaChecked, { ENGINE: "openai" })).toThrow(/OPENAI_API_KEY/);
  });

  it("keeps the Redis prefix as given on one server and hash-tags it on a Cluster, for every role", () => {
    for (const schema of [ApiEnvSchemaChecked, WorkerEnvSchemaChecked, ReconcilerEnvSchema, CommonEnvSchema]) {
      expect(parseEnv(schema, {}).REDIS_PREFIX).toBe("simbatch");
      expect(parseEnv(schema, {}).REDIS_CLUSTER_NODES).toBeUndefined();
      const cluster = parseEnv(schema, { REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-b.internal:7001,[::1]:7002" });
      expect(cluster.REDIS_CLUSTER_NODES).toEqual([
        { host: "10.0.0.1", port: 7000 },
        { host: "redis-b.internal", port: 7001 },
        { host: "::1", port: 7002 },
      ]);
      expect(cluster.REDIS_PREFIX).toBe("{simbatch}");
      expect(parseEnv(schema, { REDIS_CLUSTER_NODES: "h:1", REDIS_PREFIX: "prod-eu" }).REDIS_PREFIX).toBe("{prod-eu}");
      // A prefix that carries its own tag is used as is, on a Cluster or not.
      expect(parseEnv(schema, { REDIS_CLUSTER_NODES: "h:1", REDIS_PREFIX: "app:{sb}" }).REDIS_PREFIX).toBe("app:{sb}");
      expect(parseEnv(schema, { REDIS_PREFIX: "{simbatch}" }).REDIS_PREFIX).toBe("{simbatch}");
    }
    for (const bad of ["h", "h:0", "h:65536", "h:1,", ":7000", "h:7000:1", "h:x"]) {
      expect(() => parseEnv(CommonEnvSchema, { REDIS_CLUSTER_NODES: bad })).toThrow(/REDIS_CLUSTER_NODES/);
    }
    for (const bad of ["{}", "a{b}{c}", "a{b", "a}b", "sp ace", "{a:{b}}"]) {
      expect(() => parseEnv(CommonEnvSchema, { REDIS_PREFIX: bad })).toThrow(/REDIS_PREFIX/);
    }
    expect(effectiveRedisPrefix("x", true)).toBe("{x}");
    expect(effectiveRedisPrefix("x", false)).toBe("x");
  });

  it("takes an optional direct Postgres URL for migrations", () => {
    expect(parseEnv(CommonEnvSchema, {}).DIRECT_DATABASE_URL).toBeUndefined();
    expect(parseEnv(CommonEnvSchema, { DIRECT_DATABASE_URL: "postgresql://postgres@db:5432/simbatch" }).DIRECT_DATABASE_URL).toBe(
      "postgresql://postgres@db:5432/simbatch",
    );
    expect(() => parseEnv(CommonEnvSchema, { DIRECT_DATABASE_URL: "not a url" })).toThrow(/DIRECT_DATABASE_URL/);
  });
});

describe("parseTierLimits", () => {
  it("overrides limits per tier from env, costs in micro-dollars", () => {
    const limits = parseTierLimits({
      QUOTA_FREE_SIMULATIONS: "25",
      QUOTA_PRO_COST_USD: "12.5",
      RATE_LIMIT_BASIC_PER_MINUTE: "42",
      QUOTA_ENTERPRISE_API_CALLS: "-1",
    });
    expect(limits.free.simulations).toBe(25);
    expect(limits.pro.costMicros).toBe(12_500_000);
    expect(limits.basic.ratePerMinute).toBe(42);
    expect(limits.enterprise.apiCalls).toBe(-1);
    expect(limits.free.apiCalls).toBe(1_000);
  });

  it("rejects malformed overrides naming the key", () => {
    expect(() => parseTierLimits({ QUOTA_FREE_SIMULATIONS: "lots" })).toThrow(/QUOTA_FREE_SIMULATIONS/);
    expect(() => parseTierLimits({ QUOTA_PRO_MAX_BATCH_SIZE: "500" })).toThrow(/QUOTA_PRO_MAX_BATCH_SIZE/);
  });
});
