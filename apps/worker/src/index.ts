export { WorkerRuntime, type WorkerRuntimeOptions } from "./worker-runtime.ts";
export { createRunSimulationHandler, ShutdownInterrupt } from "./run-simulation.handler.ts";
