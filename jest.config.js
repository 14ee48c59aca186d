/** One Jest run over every workspace: unit (*.test.ts) and integration/e2e (*.int.test.ts). */
const swc = ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }];

module.exports = {
  testEnvironment: "node",
  transform: { "^.+\\.ts$": swc },
  testMatch: ["<rootDir>/{apps,packages}/*/test/**/*.test.ts", "<rootDir>/tests/**/*.test.ts"],
  globalSetup: "<rootDir>/packages/testing/src/global-setup.ts",
  globalTeardown: "<rootDir>/packages/testing/src/global-teardown.ts",
  maxWorkers: 2,
  testTimeout: 60_000,
  // ioredis arms a timer on disconnect() of a connection parked in a blocking read
  // (BullMQ workers, stream readers) that outlives the test by ~10 s; every test
  // file closes its own clients in afterAll, so exiting at the end is safe.
  forceExit: true,
};
