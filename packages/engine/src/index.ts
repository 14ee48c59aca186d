export * from "./types.ts";
export * from "./catalog.ts";
export * from "./estimate.ts";
export * from "./run-config.ts";
export { ScriptedEngine } from "./scripted-engine.ts";
export { BuiltinEngine } from "./builtin-engine.ts";
export { createEngine, type EngineOptions } from "./engine-factory.ts";
