// The wire presentation (snake_case views of batches, jobs and results), shared by
// the API's responses and the reconciler's webhook payloads.
export * from "./batches.ts";
export * from "./jobs.ts";
export * from "./results.ts";
