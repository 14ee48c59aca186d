import type { JobEvent } from "@simbatch/contracts";
import { BUDGET_CANCEL_REASON, partitionEvents, terminalValues } from "../src/apply-events.ts";

const base = { at: "2026-01-31T23:59:59.500Z", requestId: null, costMicros: 0, tokens: 0 };
const started = (jobId: string, attempt = 1): JobEvent => ({ type: "started", jobId, attempt, ...base });
const progress = (jobId: string, attempt: number, pct: number): JobEvent => ({ type: "progress", jobId, attempt, ...base, progress: pct, step: `s${pct}` });
const completed = (jobId: string, attempt = 1, costMicros = 0): JobEvent => ({ type: "completed", jobId, attempt, ...base, costMicros });
const failed = (jobId: string, attempt = 1): JobEvent => ({ type: "failed", jobId, attempt, ...base, errorMessage: "boom" });
const cancelled = (jobId: string, attempt = 1, stoppedBy?: "cancel" | "budget"): JobEvent => ({ type: "cancelled", jobId, attempt, ...base, stoppedBy });

describe("partitionEvents", () => {
  it("keeps the last progress event per job and attempt", () => {
    const p = partitionEvents([progress("a", 1, 10), progress("a", 1, 30), progress("a", 2, 5), progress("b", 1, 50), progress("a", 1, 20)]);
    expect(p.progress.map((e) => [e.jobId, e.attempt, e.type === "progress" && e.progress])).toEqual([
      ["a", 1, 20],
      ["a", 2, 5],
      ["b", 1, 50],
    ]);
  });

  it("keeps the first terminal event per job and attempt (a replay is a duplicate)", () => {
    const p = partitionEvents([completed("a", 1, 7), completed("a", 1, 9), failed("a", 1), cancelled("a", 2), failed("b", 1)]);
    expect(p.terminal.map((e) => [e.jobId, e.attempt, e.type, e.costMicros])).toEqual([
      ["a", 1, "completed", 7],
      ["a", 2, "cancelled", 0],
      ["b", 1, "failed", 0],
    ]);
  });

  it("lists each started job once, whatever the attempt, and keeps kinds apart", () => {
    const p = partitionEvents([started("a", 1), started("a", 2), started("b"), progress("b", 1, 10), completed("b")]);
    expect(p.started).toEqual(["a", "b"]);
    expect(p.progress).toHaveLength(1);
    expect(p.terminal).toHaveLength(1);
  });

  it("returns empty lists for no events", () => {
    expect(partitionEvents([])).toEqual({ progress: [], terminal: [], started: [] });
  });
});

describe("terminalValues", () => {
  const end = (e: JobEvent) => terminalValues(e as Parameters<typeof terminalValues>[0]);

  it("maps the event type to the job's end status", () => {
    expect(end(completed("a")).status).toBe("COMPLETED");
    expect(end(failed("a")).status).toBe("FAILED");
    expect(end(cancelled("a")).status).toBe("CANCELLED");
  });

  it("charges the period of the event's time, not the reconciler's", () => {
    expect(end(completed("a")).period).toBe("2026-01");
    expect(end(completed("a")).at).toEqual(new Date("2026-01-31T23:59:59.500Z"));
  });

  it("carries the failure message only on a failure", () => {
    expect(end(failed("a")).error).toBe("boom");
    expect(end(completed("a")).error).toBeNull();
  });

  it("leaves the budget's cancel reason only when the budget stopped the job", () => {
    expect(end(cancelled("a", 1, "budget")).cancelReason).toBe(BUDGET_CANCEL_REASON);
    expect(end(cancelled("a", 1, "cancel")).cancelReason).toBe("interrupted");
    expect(end(cancelled("a", 1)).cancelReason).toBe("interrupted");
    expect(BUDGET_CANCEL_REASON.startsWith("budget_exhausted:")).toBe(true); // evaluateBatches matches on this prefix
  });

  it("carries cost and tokens as bigints", () => {
    const v = end({ ...completed("a", 3, 1_234), tokens: 56 });
    expect(v).toMatchObject({ jobId: "a", attempt: 3, costMicros: 1_234n, tokens: 56n });
  });
});
