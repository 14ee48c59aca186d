export { ReconcilerRuntime, type ReconcilerOptions } from "./reconciler-runtime.ts";
