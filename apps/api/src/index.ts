export { createApp } from "./app.ts";
export type { ApiDeps, ApiConfig } from "./deps.ts";
export { buildGates, startUsageCounting } from "./http/gates.ts";
