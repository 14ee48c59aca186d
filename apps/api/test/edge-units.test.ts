import { connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { tokenComparer } from "../src/http/admin-auth.ts";
import { createHttpServer } from "../src/http/server.ts";

describe("admin token comparison", () => {
  const token = "a".repeat(16) + "0123456789abcdef";
  const matches = tokenComparer(token);

  it("accepts exactly the token", () => {
    expect(matches(token)).toBe(true);
  });

  it("refuses prefixes, extensions, other lengths and near misses without throwing", () => {
    for (const given of ["", "a", token.slice(0, -1), `${token}x`, token.toUpperCase(), `${token.slice(0, -1)}e`, "x".repeat(10_000), "é".repeat(32)]) {
      expect({ given: given.slice(0, 40), ok: matches(given) }).toEqual({ given: given.slice(0, 40), ok: false });
    }
  });
});

describe("HTTP server timeouts", () => {
  let server: Server;
  let port: number;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    server = createHttpServer(
      (req, res) => {
        // Like the API's body-taking routes: answer once the whole body has arrived.
        req.resume();
        req.on("end", () => res.end("ok"));
      },
      { headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 200 },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** The status line, and the error body whose request_id must be the X-Request-Id header's. */
  function errorAnswer(data: string): { status: string; body: unknown } {
    const [head, body] = data.split("\r\n\r\n");
    const requestId = /\r\nX-Request-Id: (req_[0-9a-f]+)\r\n/.exec(head!)?.[1];
    const parsed = JSON.parse(body!) as { request_id?: string };
    expect(requestId).toBeDefined();
    expect(parsed.request_id).toBe(requestId);
    return { status: head!.split("\r\n")[0]!, body: parsed };
  }

  /** Opens a connection, writes `chunks` as told, resolves with what came back and how long the server kept it open. */
  function slowClient(first: string): Promise<{ data: string; ms: number }> {
    return new Promise((resolve) => {
      const started = Date.now();
      const sock = connect(port, "127.0.0.1", () => sock.write(first));
      sockets.push(sock);
      let data = "";
      sock.on("data", (d) => (data += String(d)));
      sock.on("close", () => resolve({ data, ms: Date.now() - started }));
      sock.on("error", () => undefined);
    });
  }

  it("applies the configured values", () => {
    expect(server.headersTimeout).toBe(300);
    expect(server.requestTimeout).toBe(600);
    expect(server.keepAliveTimeout).toBe(200);
  });

  it("drops a client that never finishes its headers (408, connection closed)", async () => {
    const { data, ms } = await slowClient("GET / HTTP/1.1\r\nHost: x\r\n");
    expect(errorAnswer(data)).toEqual({
      status: "HTTP/1.1 408 Request Timeout",
      body: { error: "RequestTimeout", message: expect.any(String), detail: null, request_id: expect.any(String) },
    });
    expect(ms).toBeLessThan(3_000);
  });

  it("drops a client that never finishes its body", async () => {
    const { data, ms } = await slowClient("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    expect(data).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeLessThan(3_000);
  });

  it("answers headers over Node's limit with 431, the contract's error body and a request id", async () => {
    const { data } = await slowClient(`GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(errorAnswer(data)).toEqual({
      status: "HTTP/1.1 431 Request Header Fields Too Large",
      body: { error: "PayloadTooLarge", message: expect.stringContaining("16 KiB"), detail: null, request_id: expect.any(String) },
    });
  });

  it("answers a request that is not HTTP with 400 and closes the connection", async () => {
    for (const raw of ["HELLO\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"]) {
      const { data } = await slowClient(raw);
      expect({ raw, ...errorAnswer(data) }).toEqual({
        raw,
        status: "HTTP/1.1 400 Bad Request",
        body: { error: "BadRequest", message: expect.stringContaining("Malformed HTTP request"), detail: null, request_id: expect.any(String) },
      });
    }
  });

  it("closes idle keep-alive connections after keepAliveTimeout", async () => {
    const { data, ms } = await slowClient("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(data).toMatch(/^HTTP\/1\.1 200/);
    expect(ms).toBeLessThan(3_000);
  });
});
