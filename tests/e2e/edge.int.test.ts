import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import request from "supertest";
import { createApp } from "@simbatch/api";
import { run } from "../support/processes.ts";
import { Stack } from "../support/stack.ts";

const ADMIN = "edge-admin-token-0123456789abcdef0123456789";
const REQUEST_ID = /^\S+$/;

/** The contract's error body. */
function expectError(res: { status: number; body: Record<string, unknown> }, status: number, code: string) {
  expect({ status: res.status, error: res.body.error }).toEqual({ status, error: code });
  expect(typeof res.body.message).toBe("string");
  expect("detail" in res.body).toBe(true);
  expect(res.body.request_id).toMatch(REQUEST_ID);
}

/** Writes raw bytes to the app on a real socket; resolves with everything the server sent once it closes the connection (or after waitMs). */
function rawExchange(port: number, write: (sock: ReturnType<typeof connect>) => void, waitMs = 3_000): Promise<{ data: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = connect(port, "127.0.0.1", () => write(sock));
    let data = "";
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ data, closed: false, ms: Date.now() - started });
    }, waitMs);
    sock.on("data", (d) => (data += String(d)));
    sock.on("error", () => undefined);
    sock.on("close", () => {
      clearTimeout(timer);
      resolve({ data, closed: true, ms: Date.now() - started });
    });
  });
}

describe("the hardened edge", () => {
  const stack = new Stack({ workers: [1], adminToken: ADMIN });
  let key: string;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    await stack.start();
    key = (await stack.env.user("edgy", "pro")).key;
    server = stack.app.listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await stack.stop();
  });

  describe("admin API", () => {
    const ADMIN_PATHS = [
      "/admin",
      "/admin/",
      "/admin/users",
      "/admin/users/alice",
      "/admin/users/alice/api-keys",
      "/admin/api-keys/k1",
      "/admin/metrics",
      "/admin/operations",
      "/admin/users/alice/usage-adjustments",
      "/admin/anything/else",
    ];

    it("answers 404 NotFound for every /admin path and method when ADMIN_TOKEN is unset", async () => {
      const app = createApp({ ...stack.deps, config: { ...stack.deps.config, adminToken: undefined } });
      for (const path of ADMIN_PATHS) {
        for (const method of ["get", "post", "patch", "delete", "put"] as const) {
          const res = await request(app)[method](path).set("Authorization", `Bearer ${ADMIN}`).send({ user_id: "x", tier: "pro" });
          expect({ method, path, status: res.status, allow: res.headers.allow }).toEqual({ method, path, status: 404, allow: undefined });
          expectError(res, 404, "NotFound");
        }
      }
    });

    it("refuses to be wired with a token shorter than 32 characters", () => {
      expect(() => createApp({ ...stack.deps, config: { ...stack.deps.config, adminToken: "change-me-admin-token" } })).toThrow(/32/);
    });

    it("throttles repeated wrong tokens per client IP with 429 and Retry-After, before looking at the token", async () => {
      const from = (ip: string) => ({
        get: (token: string | null) => {
          const r = stack.http().get("/admin/operations").set("X-Forwarded-For", ip);
          return token === null ? r : r.set("Authorization", `Bearer ${token}`);
        },
      });
      const attacker = from("203.0.113.7");
      for (let i = 0; i < 10; i++) expectError(await attacker.get(i % 3 === 0 ? null : `guess-${i}`), 401, "Unauthorized");
      const throttled = await attacker.get("guess-11");
      expectError(throttled, 429, "RateLimitExceeded");
      expect(Number(throttled.headers["retry-after"])).toBeGreaterThan(0);
      expect(Number(throttled.headers["retry-after"])).toBeLessThanOrEqual(15 * 60);
      expect(throttled.body).toMatchObject({ tier: null, limit: 10 });
      // A throttled client cannot tell a right guess from a wrong one.
      expectError(await attacker.get(ADMIN), 429, "RateLimitExceeded");
      // Other clients are not affected.
      expect((await from("198.51.100.9").get(ADMIN)).status).toBe(200);
      // The counter expires with its window.
      const keys = await stack.env.core.redis.keys(`${stack.env.prefix}:admin-auth-failures:*`);
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) expect(await stack.env.core.redis.pttl(k)).toBeGreaterThan(0);
    });

    it("counts only failed authentications: valid tokens, even with bad bodies, never throttle", async () => {
      const operator = "192.0.2.44";
      for (let i = 0; i < 15; i++) {
        const res = await stack.http().post("/admin/users").set("X-Forwarded-For", operator).set("Authorization", `Bearer ${ADMIN}`).send({ user_id: "" });
        expect(res.status).toBe(422);
      }
      const ok = await stack.http().post("/admin/users").set("X-Forwarded-For", operator).set("Authorization", `Bearer ${ADMIN}`).send({ user_id: `op-user` });
      expect(ok.status).toBe(201);
    });

    it("stops the API at boot on a short ADMIN_TOKEN, naming the key and not the value", async () => {
      const p = run("apps/api/src/main.ts", {
        ADMIN_TOKEN: "short-but-secret-value",
        PORT: "0",
        REDIS_PREFIX: stack.env.prefix,
        DATABASE_URL: stack.env.databaseUrl,
      });
      const { code } = await p.exited;
      expect(code).toBe(1);
      expect(p.output()).toContain("ADMIN_TOKEN");
      expect(p.output()).toContain("32");
      expect(p.output()).not.toContain("short-but-secret-value");
    }, 30_000);
  });

  describe("config", () => {
    it("caps config at 16 KiB serialized with a 422 naming the field, single and in a batch", async () => {
      const config = { seed: 1, notes: "x".repeat(16 * 1024) };
      const single = await stack.http().post("/simulations").set("X-API-Key", key).send({ template_id: "board_meeting", config });
      expectError(single, 422, "ValidationError");
      expect(single.body.detail).toEqual([{ path: "config", message: "must be at most 16 KiB serialized" }]);
      const batch = await stack.submitBatch(key, { simulations: [{ template_id: "board_meeting" }, { template_id: "board_meeting", config }] });
      expectError(batch, 422, "ValidationError");
      expect(batch.body.detail).toEqual([{ path: "simulations.1.config", message: "must be at most 16 KiB serialized" }]);
    });

    it("drops unknown config keys: they are neither stored nor echoed; known and template keys stay", async () => {
      const res = await stack
        .http()
        .post("/simulations")
        .set("X-API-Key", key)
        .send({ template_id: "board_meeting", config: { seed: 11, temperature: 2, payload: { a: "b".repeat(1000) } } });
      expect(res.status).toBe(202);
      expect(res.body.config).toEqual({ seed: 11 });
      expect((await stack.http().get(`/simulations/${res.body.job_id}`).set("X-API-Key", key)).body.config).toEqual({ seed: 11 });
      const row = await stack.env.core.db.simulationJob.findUnique({ where: { id: res.body.job_id } });
      expect(row?.config).toEqual({ seed: 11 });
      const list = await stack.http().get("/simulations?page_size=100").set("X-API-Key", key);
      expect(JSON.stringify(list.body)).not.toContain("temperature");

      const scripted = await stack.submitBatch(key, { simulations: [{ template_id: "test/scripted", config: { steps: 2, step_ms: 0, junk: 1 } }] });
      expect(scripted.status).toBe(202);
      const jobs = (await stack.http().get(`/simulations/batch/${scripted.body.batch_id}/jobs`).set("X-API-Key", key)).body.jobs;
      expect(jobs[0].config).toEqual({ steps: 2, step_ms: 0 });
    });
  });

  describe("bodies", () => {
    it("refuses an oversized Content-Length with 413 before reading the body or checking auth, and closes the connection", async () => {
      const { data, closed, ms } = await rawExchange(port, (sock) =>
        sock.write("POST /simulations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"),
      );
      expect(data).toMatch(/^HTTP\/1\.1 413/);
      expect(data).toContain('"error":"PayloadTooLarge"');
      expect(data).toContain('"request_id"');
      expect(closed).toBe(true);
      expect(ms).toBeLessThan(2_000);
    });

    it("does not read bodies on routes that take none", async () => {
      // A chunked body past the limit on a GET: never buffered, so the GET just answers.
      const chunk = "x".repeat(100 * 1024);
      const { data } = await rawExchange(port, (sock) =>
        sock.write(
          `GET /simulations/stats HTTP/1.1\r\nHost: x\r\nX-API-Key: ${key}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
        ),
      );
      expect(data).toMatch(/^HTTP\/1\.1 200/);
      // The same chunked body on a POST is read and cut off at the limit.
      const post = await rawExchange(port, (sock) =>
        sock.write(
          `POST /simulations HTTP/1.1\r\nHost: x\r\nX-API-Key: ${key}\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
        ),
      );
      expect(post.data).toMatch(/^HTTP\/1\.1 413/);
      expect(post.data).toContain('"error":"PayloadTooLarge"');
    });
  });
});
