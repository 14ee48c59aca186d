export * from "./redis.ts";
export * from "./simulation-queue.ts";
export * from "./event-stream.ts";
export * from "./signals.ts";
export * from "./worker-registry.ts";
export * from "./api-call-counter.ts";
// The worker app builds its BullMQ Worker from these; BullMQ itself is imported here only.
export { UnrecoverableError, Worker, type Job } from "bullmq";
export * from "./errors.ts";
export * from "./progress-channel.ts";
export * from "./stream-slots.ts";
export * from "./webhook-queue.ts";
