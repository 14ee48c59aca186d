// Lint for the whole monorepo (`npm run lint`, run by .ci/run before the tests).
// Type-aware rules where they catch real bugs (promises, exhaustive switches),
// and the layering kept by import boundaries:
//   apps -> core -> queue / runtime -> engine / db / contracts / errors / logger / config
// Cycles are checked separately (dpdm, see package.json "lint:cycles").
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Imports a file outside the named places may not use. */
const only = (what, where) => ({ what, where });
const BOUNDARIES = [
  only(["@prisma/*", "prisma", "prisma/*", "**/generated/**"], "packages/db"),
  only(["bullmq", "ioredis"], "packages/queue"),
  only(["express", "express-*", "rate-limit-redis", "prom-client", "@bull-board/*"], "apps/api"),
  only(["commander", "cli-progress", "eventsource-parser", "eventsource-parser/*"], "packages/client"),
];

const restricted = (except) => ({
  patterns: BOUNDARIES.filter((b) => b.where !== except).map((b) => ({
    group: b.what,
    message: `only ${b.where} may import this (see eslint.config.mjs: layering)`,
  })),
});

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "packages/db/src/generated/**", "docs/**", "**/*.js", "**/*.cjs", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false, attributes: false } }],
      "@typescript-eslint/switch-exhaustiveness-check": ["error", { considerDefaultExhaustiveForUnions: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-require-imports": "off",
      "no-empty": ["error", { allowEmptyCatch: true }],
      // Layout is Prettier's (npm run format); this rule only fights its line breaks.
      "no-unexpected-multiline": "off",
    },
  },
  {
    // Layering: each kind of client library lives in one package. The owning
    // package's own block below lifts its boundary (the last matching block wins).
    files: ["apps/**/*.ts", "packages/**/*.ts", "scripts/**/*.ts"],
    ignores: ["packages/testing/**", "**/test/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: BOUNDARIES.map((b) => ({ group: b.what, message: `only ${b.where} may import this (see eslint.config.mjs: layering)` })),
        },
      ],
    },
  },
  ...BOUNDARIES.map((b) => ({
    files: [`${b.where}/**/*.ts`],
    rules: { "no-restricted-imports": ["error", restricted(b.where)] },
  })),
  {
    // process.env is read by the config package and the composition roots only.
    files: ["apps/**/*.ts", "packages/**/*.ts"],
    ignores: ["packages/config/**", "packages/testing/**", "apps/*/src/main.ts", "packages/client/src/cli/main.ts", "**/test/**"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "read the environment in packages/config or a composition root (apps/*/src/main.ts)" },
      ],
    },
  },
  {
    // The client is published on its own: it talks to the API over HTTP and shares
    // only the wire contract (types) and the error codes with the service.
    files: ["packages/client/src/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...restricted("packages/client").patterns,
            { regex: "^@simbatch/(?!contracts$|errors$)", message: "the client depends only on @simbatch/contracts and @simbatch/errors" },
          ],
        },
      ],
    },
  },
  {
    // Tests, benches and scripts may use what they need.
    files: ["tests/**/*.ts", "bench/**/*.ts", "**/test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-floating-promises": "off",
      "no-restricted-imports": "off",
    },
  },
);
