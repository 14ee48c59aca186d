import { defineConfig } from "tsup";

/**
 * dist/index.mjs + index.cjs with their declarations (index.d.mts / index.d.cts),
 * and the CLI as one CommonJS file for bin/simbatch.cjs. Dependencies stay
 * external; type-only imports (the contracts' zod schemas) leave no code behind.
 */
export default defineConfig([
  {
    entry: { index: "src/index.ts" },
    format: ["esm", "cjs"],
    outExtension: ({ format }) => ({ js: format === "esm" ? ".mjs" : ".cjs" }),
    dts: true,
    target: "node20",
    platform: "node",
    sourcemap: true,
    clean: true,
  },
  {
    entry: { cli: "src/cli/main.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    target: "node20",
    platform: "node",
    sourcemap: true,
  },
]);
