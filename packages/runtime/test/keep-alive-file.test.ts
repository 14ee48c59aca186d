import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { keepAliveFile } from "../src/index.ts";

describe("keepAliveFile", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "simbatch-alive-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the file at once, keeps rewriting it, and removes it on stop", async () => {
    const file = path.join(dir, "role.alive");
    const alive = keepAliveFile(file, 20);
    try {
      expect(existsSync(file)).toBe(true);
      const first = statSync(file).mtimeMs;
      const deadline = Date.now() + 5_000;
      while (statSync(file).mtimeMs === first) {
        if (Date.now() > deadline) throw new Error("the file was not rewritten");
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      alive.stop();
    }
    expect(existsSync(file)).toBe(false);
  });

  it("does nothing without a file, and survives an unwritable path", () => {
    expect(() => keepAliveFile(undefined).stop()).not.toThrow();
    const alive = keepAliveFile(path.join(dir, "missing-dir", "x.alive"), 1_000);
    expect(existsSync(path.join(dir, "missing-dir"))).toBe(false);
    alive.stop();
  });
});
