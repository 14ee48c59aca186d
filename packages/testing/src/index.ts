export * from "./constants.ts";
export * from "./test-env.ts";
export * from "./wait-for.ts";
export * from "./admin-client.ts";
