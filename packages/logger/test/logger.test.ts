import { Writable } from "node:stream";
import winston from "winston";
import { createLogger } from "../src/index.ts";

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ service: "test" });
  logger.clear();
  logger.add(new winston.transports.Stream({ stream: new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }) }));
  return { logger, lines };
}

describe("logger", () => {
  it("writes message first and redacts secrets at any depth", () => {
    const { logger, lines } = capture();
    logger.info("request", { headers: { "x-api-key": "tp_0123456789abcdef0123456789abcdef", authorization: "Bearer s3cret" }, token: "t", job_id: "sim_1" });
    const line = lines[0]!;
    expect(Object.keys(JSON.parse(line)).slice(0, 4)).toEqual(["timestamp", "level", "service", "message"]);
    expect(line).not.toContain("s3cret");
    expect(line).not.toContain("0123456789abcdef0123456789abcdef");
    expect(JSON.parse(line)).toMatchObject({ job_id: "sim_1", token: "[redacted]", headers: { authorization: "[redacted]" } });
  });

  it("masks API keys quoted inside a message", () => {
    const { logger, lines } = capture();
    logger.warn("bad key tp_0123456789abcdef0123456789abcdef used");
    expect(lines[0]).toContain("tp_01234567…");
    expect(lines[0]).not.toContain("89abcdef0123456789abcdef");
  });
});
