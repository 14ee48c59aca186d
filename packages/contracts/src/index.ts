export * from "./ids.ts";
export * from "./period.ts";
export * from "./queue.ts";
export * from "./events.ts";
export * from "./requests.ts";
export * from "./responses.ts";
export * from "./openapi.ts";
export * from "./admin-requests.ts";
