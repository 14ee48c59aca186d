/**
 * One Jest run over every workspace, in two projects:
 * - `unit`: `*.test.ts` that are not `*.int.test.ts`; no global setup, no services
 *   (`npm run test:unit`, or `npx jest --selectProjects unit`);
 * - `integration`: `*.int.test.ts` (integration and end-to-end), against real Postgres
 *   and Redis; the global setup migrates a template database once per run.
 */
const swc = ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }];

const common = { testEnvironment: "node", transform: { "^.+\\.ts$": swc } };

module.exports = {
  projects: [
    {
      ...common,
      displayName: "unit",
      testMatch: ["<rootDir>/{apps,packages}/*/test/**/*.test.ts", "<rootDir>/tests/**/*.test.ts"],
      testPathIgnorePatterns: ["/node_modules/", "\\.int\\.test\\.ts$"],
    },
    {
      ...common,
      displayName: "integration",
      testMatch: ["<rootDir>/{apps,packages}/*/test/**/*.int.test.ts", "<rootDir>/tests/**/*.int.test.ts"],
      globalSetup: "<rootDir>/packages/testing/src/global-setup.ts",
      globalTeardown: "<rootDir>/packages/testing/src/global-teardown.ts",
    },
  ],
  maxWorkers: 2,
  testTimeout: 60_000,
  // ioredis arms a timer on disconnect() of a connection parked in a blocking read
  // (BullMQ workers, stream readers) that outlives the test by ~10 s; every test
  // file closes its own clients in afterAll, so exiting at the end is safe.
  forceExit: true,
};
