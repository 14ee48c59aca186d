import { batchTransition, decideStop, derivedStatus, failFastMessage, type JobStats, type StopRuleBatch, type StopRuleFacts } from "../src/batch-state.ts";

const stats = (s: Partial<JobStats> = {}): JobStats => ({ completed: 0, failed: 0, cancelled: 0, charged: 0n, first_started: null, ...s });
const batch = (b: Partial<StopRuleBatch> = {}): StopRuleBatch => ({
  status: "RUNNING",
  stopReason: null,
  failFast: false,
  capMicros: null,
  totalJobs: 4,
  costLimitMicros: -1,
  ...b,
});
/** Everything loaded: the decision no longer asks for anything. */
const all = (f: StopRuleFacts = {}): StopRuleFacts => ({ budgetInterrupted: false, runningSpendMicros: 0n, costUsedMicros: 0n, ...f });

describe("derivedStatus", () => {
  const row = (status: string, total_jobs = 3) => ({ status, total_jobs });

  it("keeps a cancelled batch CANCELLED whatever its jobs did", () => {
    expect(derivedStatus(row("CANCELLED"), stats({ completed: 3 }))).toBe("CANCELLED");
    expect(derivedStatus(row("CANCELLED"), stats())).toBe("CANCELLED");
  });

  it("is COMPLETED only when every job completed", () => {
    expect(derivedStatus(row("RUNNING"), stats({ completed: 3 }))).toBe("COMPLETED");
    expect(derivedStatus(row("RUNNING"), stats({ completed: 2, cancelled: 1 }))).toBe("PARTIAL");
    expect(derivedStatus(row("RUNNING"), stats({ completed: 2, failed: 1 }))).toBe("PARTIAL");
  });

  it("is FAILED when every job ended and none completed (cancelled ones included)", () => {
    expect(derivedStatus(row("RUNNING"), stats({ failed: 3 }))).toBe("FAILED");
    expect(derivedStatus(row("RUNNING"), stats({ failed: 1, cancelled: 2 }))).toBe("FAILED");
    expect(derivedStatus(row("PENDING"), stats({ cancelled: 3 }))).toBe("FAILED");
  });

  it("stays RUNNING until the last job ends", () => {
    expect(derivedStatus(row("RUNNING"), stats({ completed: 2 }))).toBe("RUNNING");
  });

  it("moves PENDING to RUNNING once a job started, not before", () => {
    expect(derivedStatus(row("PENDING"), stats())).toBe("PENDING");
    expect(derivedStatus(row("PENDING"), stats({ first_started: new Date(0) }))).toBe("RUNNING");
    // Never back from RUNNING, even without a known first start.
    expect(derivedStatus(row("RUNNING"), stats())).toBe("RUNNING");
  });
});

describe("decideStop", () => {
  it("does nothing for a batch already stopped or no longer pending or running", () => {
    const failing = stats({ failed: 1 });
    expect(decideStop(batch({ failFast: true, stopReason: "BUDGET_EXHAUSTED" }), failing, all())).toEqual({ kind: "none" });
    for (const status of ["CANCELLED", "COMPLETED", "PARTIAL", "FAILED"]) {
      expect(decideStop(batch({ failFast: true, status }), failing, all())).toEqual({ kind: "none" });
    }
    expect(decideStop(batch({ failFast: true, status: "PENDING" }), failing, {})).toEqual({ kind: "stop", reason: "FAIL_FAST" });
  });

  it("stops a fail-fast batch on its first failure, before any read", () => {
    expect(decideStop(batch({ failFast: true, capMicros: 100n, costLimitMicros: 10 }), stats({ failed: 1, charged: 500n }), {})).toEqual({
      kind: "stop",
      reason: "FAIL_FAST",
    });
  });

  it("does not stop a fail-fast batch without a failure, nor a batch without fail-fast on a failure", () => {
    expect(decideStop(batch({ failFast: true }), stats({ completed: 1, cancelled: 1 }), all())).toEqual({ kind: "none" });
    expect(decideStop(batch({ failFast: false }), stats({ failed: 2 }), all())).toEqual({ kind: "none" });
  });

  it("stops on the budget when spending (charged + running) reaches the cap exactly", () => {
    const b = batch({ capMicros: 1_000_000n });
    expect(decideStop(b, stats({ completed: 1, charged: 600_000n }), {})).toEqual({ kind: "need", fact: "runningSpendMicros" });
    expect(decideStop(b, stats({ completed: 1, charged: 600_000n }), all({ runningSpendMicros: 400_000n }))).toEqual({
      kind: "stop",
      reason: "BUDGET_EXHAUSTED",
      message: "Budget cap reached: spent 1 of 1 USD",
    });
    expect(decideStop(b, stats({ completed: 1, charged: 600_000n }), all({ runningSpendMicros: 399_999n }))).toEqual({ kind: "none" });
  });

  it("never reads running spend for an uncapped batch", () => {
    const d = decideStop(batch({ capMicros: null, costLimitMicros: -1 }), stats({ completed: 1, charged: 10n ** 12n }), {});
    expect(d).toEqual({ kind: "none" });
  });

  it("with every job ended, stops on the budget only when the budget interrupted a job", () => {
    const b = batch({ capMicros: 500_000n, totalJobs: 3 });
    const ended = stats({ completed: 2, cancelled: 1, charged: 500_000n });
    expect(decideStop(b, ended, {})).toEqual({ kind: "need", fact: "budgetInterrupted" });
    expect(decideStop(b, ended, { budgetInterrupted: true })).toEqual({
      kind: "stop",
      reason: "BUDGET_EXHAUSTED",
      message: "Budget cap reached: spent 0.5 of 0.5 USD",
    });
    expect(decideStop(b, ended, { budgetInterrupted: false })).toEqual({ kind: "none" });
  });

  it("with every job ended and none cancelled, has nothing to stop even with the cap met exactly", () => {
    const b = batch({ capMicros: 500_000n, totalJobs: 2, costLimitMicros: 1 });
    expect(decideStop(b, stats({ completed: 2, charged: 500_000n }), {})).toEqual({ kind: "none" });
    // Uncapped and ended: no budget stop, no quota stop.
    expect(decideStop(batch({ totalJobs: 2, costLimitMicros: 1 }), stats({ completed: 1, cancelled: 1 }), {})).toEqual({ kind: "none" });
  });

  it("stops on the monthly cost quota when the owner's cost reaches the limit exactly", () => {
    const b = batch({ costLimitMicros: 1_000_000 });
    expect(decideStop(b, stats({ completed: 1 }), {})).toEqual({ kind: "need", fact: "costUsedMicros" });
    expect(decideStop(b, stats({ completed: 1 }), { costUsedMicros: 1_000_000n })).toEqual({
      kind: "stop",
      reason: "QUOTA_EXHAUSTED",
      message: "Monthly cost quota reached",
    });
    expect(decideStop(b, stats({ completed: 1 }), { costUsedMicros: 999_999n })).toEqual({ kind: "none" });
  });

  it("applies the rules in order: fail-fast, then budget, then quota", () => {
    const b = batch({ failFast: true, capMicros: 100n, costLimitMicros: 100 });
    expect(decideStop(b, stats({ failed: 1, charged: 200n }), all({ costUsedMicros: 200n }))).toMatchObject({ reason: "FAIL_FAST" });
    expect(decideStop(b, stats({ completed: 1, charged: 200n }), all({ costUsedMicros: 200n }))).toMatchObject({ reason: "BUDGET_EXHAUSTED" });
    // Budget under the cap: the quota is looked at next.
    expect(decideStop(b, stats({ completed: 1, charged: 50n }), { runningSpendMicros: 0n })).toEqual({ kind: "need", fact: "costUsedMicros" });
    expect(decideStop(b, stats({ completed: 1, charged: 50n }), all({ costUsedMicros: 200n }))).toMatchObject({ reason: "QUOTA_EXHAUSTED" });
  });

  it("names the first failed job in the fail-fast message", () => {
    expect(failFastMessage({ id: "job_1", message: "boom" })).toBe("Job job_1 failed: boom");
    expect(failFastMessage({ id: "job_1", message: null })).toBe("Job job_1 failed: unknown error");
  });
});

describe("batchTransition", () => {
  const row = (r: Partial<{ status: string; stop_reason: string | null; total_jobs: number; started_at: Date | null }> = {}) => ({
    status: "RUNNING",
    stop_reason: null,
    total_jobs: 3,
    started_at: new Date(0),
    ...r,
  });

  it("writes nothing when a job of a running batch ended and others remain", () => {
    expect(batchTransition(row(), stats({ completed: 1, first_started: new Date(0) }), false)).toEqual({
      status: "RUNNING",
      finished: false,
      noStop: false,
      write: false,
    });
  });

  it("writes when a stop rule fired, even with the status unchanged", () => {
    expect(batchTransition(row(), stats({ completed: 1 }), true)).toMatchObject({ status: "RUNNING", write: true });
  });

  it("writes the first start of a pending batch, and of a running one whose started_at is missing", () => {
    expect(batchTransition(row({ status: "PENDING", started_at: null }), stats({ first_started: new Date(5) }), false)).toMatchObject({
      status: "RUNNING",
      write: true,
    });
    expect(batchTransition(row({ started_at: null }), stats({ first_started: new Date(5) }), false)).toMatchObject({ status: "RUNNING", write: true });
    expect(batchTransition(row({ status: "PENDING", started_at: null }), stats(), false)).toMatchObject({ status: "PENDING", write: false });
  });

  it("finishes COMPLETED, PARTIAL or FAILED once every job ended", () => {
    expect(batchTransition(row(), stats({ completed: 3 }), false)).toEqual({ status: "COMPLETED", finished: true, noStop: true, write: true });
    expect(batchTransition(row(), stats({ completed: 1, failed: 2 }), false)).toEqual({ status: "PARTIAL", finished: true, noStop: false, write: true });
    expect(batchTransition(row(), stats({ failed: 2, cancelled: 1 }), false)).toEqual({ status: "FAILED", finished: true, noStop: false, write: true });
  });

  it("a budget stop that cut nothing off ends COMPLETED and clears the stop", () => {
    const t = batchTransition(row({ stop_reason: "BUDGET_EXHAUSTED" }), stats({ completed: 3, charged: 1_000_000n }), false);
    expect(t).toMatchObject({ status: "COMPLETED", noStop: true, write: true });
  });

  it("a budget stop that cancelled a job ends PARTIAL and keeps the stop", () => {
    const t = batchTransition(row({ stop_reason: "BUDGET_EXHAUSTED" }), stats({ completed: 2, cancelled: 1 }), false);
    expect(t).toMatchObject({ status: "PARTIAL", noStop: false, finished: true });
  });

  it("a cancelled batch still running jobs stays CANCELLED and writes only when its last job ends", () => {
    expect(batchTransition(row({ status: "CANCELLED" }), stats({ cancelled: 2 }), false)).toMatchObject({ status: "CANCELLED", write: false });
    expect(batchTransition(row({ status: "CANCELLED" }), stats({ completed: 1, cancelled: 2 }), false)).toMatchObject({
      status: "CANCELLED",
      finished: true,
      noStop: false,
      write: true,
    });
  });
});
