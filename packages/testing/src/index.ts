export * from "./constants.ts";
export * from "./test-env.ts";
export * from "./wait-for.ts";
