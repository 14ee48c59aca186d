export { createApp } from "./app.ts";
export type { ApiDeps, ApiConfig, RouteSpec } from "./deps.ts";
export { buildGates, startUsageCounting, type ApiGates } from "./http/gates.ts";
