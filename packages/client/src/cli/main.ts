#!/usr/bin/env node
import { runCli } from "./program.ts";

// The CLI's composition root: the only place it reads the process's environment and streams.
// Ctrl-C stops a wait cleanly (the bar restores the cursor, exit 130); anything else
// still running gets two seconds, and a second Ctrl-C ends the process at once.
const controller = new AbortController();
process.once("SIGINT", () => {
  controller.abort(new Error("interrupted"));
  setTimeout(() => process.exit(130), 2_000).unref();
});

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: controller.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exitCode = 2;
  },
);
