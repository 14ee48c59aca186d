export { createApp } from "./app.ts";
export { wireApi, type ApiWiringOptions } from "./wiring.ts";
export type { ApiDeps, ApiConfig } from "./deps.ts";
export { buildGates, startUsageCounting } from "./http/gates.ts";
export { createHttpServer, DEFAULT_HTTP_TIMEOUTS, type HttpTimeouts } from "./http/server.ts";
export { tokenComparer } from "./http/admin-auth.ts";
export { LiveHub, liveHub } from "./live/hub.ts";
