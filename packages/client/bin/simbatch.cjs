#!/usr/bin/env node
// The `simbatch` command: runs the built CLI (npm run build in packages/client; the root postinstall does it).
"use strict";
try {
  require("../dist/cli.cjs");
} catch (err) {
  if (err && err.code === "MODULE_NOT_FOUND" && String(err.message).includes("dist/cli.cjs")) {
    process.stderr.write("simbatch: the CLI is not built; run `npm run build` in packages/client (or `npm run build` at the root)\n");
    process.exit(2);
  }
  throw err;
}
