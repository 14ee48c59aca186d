import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { build, commandOf, dockerignore, parseDockerfile, parseEnvArgs, splitFlags } from "../support/dockerfile.ts";

/** The Dockerfile interpreter the image test relies on (tests/support/dockerfile.ts). */
describe("Dockerfile tools", () => {
  it("reads .dockerignore rules as Docker does: anchored at the root, ** over directories, a matching directory excludes its contents, ! re-includes", () => {
    const ignored = dockerignore(["# comment", "**/node_modules", "tests", "**/test", "*.md", "docs/", "!docs/keep.md", "/.env"].join("\n"));
    expect(ignored("node_modules/a/index.js")).toBe(true);
    expect(ignored("packages/x/node_modules/a.js")).toBe(true);
    expect(ignored("tests/e2e/a.test.ts")).toBe(true);
    expect(ignored("apps/api/test/a.test.ts")).toBe(true);
    expect(ignored("README.md")).toBe(true);
    expect(ignored("packages/engine/README.md")).toBe(false); // `*.md` is anchored at the root
    expect(ignored("docs/architecture.md")).toBe(true);
    expect(ignored("docs/keep.md")).toBe(false);
    expect(ignored(".env")).toBe(true);
    expect(ignored("apps/api/src/testing.ts")).toBe(false);
    expect(ignored("scripts/migrate.ts")).toBe(false);
  });

  it("parses instructions across continuations, flags, exec and shell forms, ENV pairs", () => {
    const ins = parseDockerfile(
      '# syntax=docker/dockerfile:1\nFROM node:20 AS build\n\nRUN a && \\\n  # inside\n  b\nENV A=1 \\\n    B="two words"\nCMD ["api"]\n',
    );
    expect(ins.map((i) => [i.op, i.args])).toEqual([
      ["FROM", "node:20 AS build"],
      ["RUN", "a &&  b"],
      ["ENV", 'A=1  B="two words"'],
      ["CMD", '["api"]'],
    ]);
    expect(parseEnvArgs(ins[2]!.args)).toEqual({ A: "1", B: "two words" });
    expect(parseEnvArgs("LEGACY some value")).toEqual({ LEGACY: "some value" });
    expect(splitFlags("--from=build --chown=node:node /app /app")).toEqual({ flags: { from: "build", chown: "node:node" }, rest: "/app /app" });
    expect(commandOf('["node", "x.mjs"]')).toEqual(["node", "x.mjs"]);
    expect(commandOf("npm ci")).toEqual(["/bin/sh", "-c", "npm ci"]);
  });

  it("refuses what it cannot follow", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "simbatch-dockerfile-"));
    try {
      const opts = { context: dir, workspace: dir, runEnv: {} };
      expect(() => build(parseDockerfile("FROM node:20\nVOLUME /data\n"), opts)).toThrow(/VOLUME: not understood/);
      expect(() => build(parseDockerfile("FROM node:20\nCOPY --link a b\n"), opts)).toThrow(/unknown flag --link/);
      expect(() => build(parseDockerfile("FROM node:20\nCOPY missing /x\n"), opts)).toThrow(/missing is not in the build context/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
