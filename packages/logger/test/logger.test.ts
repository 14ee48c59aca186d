import { spawnSync } from "node:child_process";
import path from "node:path";
import { Writable } from "node:stream";
import winston from "winston";
import { createLogger } from "../src/index.ts";

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ service: "test" });
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    }),
  );
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

  it("writes the lines of one tick to stdout in one write", async () => {
    const logger = createLogger({ service: "test" });
    const writes: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (writes.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      for (let i = 0; i < 50; i++) logger.info("line", { i });
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.stdout.write = original;
    }
    expect(writes).toHaveLength(1);
    const lines = writes[0]!
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { i: number });
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("loses no line when the process exits right after logging", () => {
    const script = `const { createLogger } = require(${JSON.stringify(path.join(__dirname, "../src/index.ts"))});
      const log = createLogger({ service: "t" }); for (let i = 0; i < 200; i++) log.info("bye", { i }); process.exit(0);`;
    const res = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { encoding: "utf8" });
    expect(res.status).toBe(0);
    expect(res.stdout.trim().split("\n")).toHaveLength(200);
  });
});
