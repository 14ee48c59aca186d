import type { JobEvent } from "@simbatch/contracts";
import type { ClaimedJob, ClaimResult, EndVerdict, ResultToStore } from "@simbatch/core";
import type { Db } from "@simbatch/db";
import { ScriptedEngine } from "@simbatch/engine";
import { createLogger } from "@simbatch/logger";
import type { EventStream, StopSignals, StopVerdict } from "@simbatch/queue";
import type { Job } from "bullmq";
import { createRunSimulationHandler, ShutdownInterrupt } from "../src/run-simulation.handler.ts";

const claimed = (attempt: number, config: Record<string, unknown>): ClaimedJob => ({
  id: "sim_000000000001",
  ownerId: "u",
  batchId: "bat_1",
  attempt,
  budgetCapMicros: null,
  templateId: "test/scripted",
  description: null,
  entityCount: 1,
  timepointCount: 1,
  temporalMode: "forward",
  config,
  generateSummaries: false,
  exportFormats: ["json"],
  requestId: "req-1",
});

function harness(opts: { claim: ClaimResult; stored?: EndVerdict; verdicts?: StopVerdict[]; shuttingDown?: () => boolean }) {
  const events: JobEvent[] = [];
  const stores: ResultToStore[] = [];
  const verdicts = [...(opts.verdicts ?? [])];
  const boundaries: { jobId: string; batch: { id: string; capMicros: number | null } | null; deltaMicros: number }[] = [];
  const lines: { level: string; message: string }[] = [];
  const logger = createLogger({ service: "test", level: "error" });
  const spy = (level: string) => (message: string) => void lines.push({ level, message });
  const child = { debug: spy("debug"), info: spy("info"), warn: spy("warn"), error: spy("error") };
  const handle = createRunSimulationHandler({
    db: {} as Db,
    claim: async () => opts.claim,
    storeResult: async (item) => {
      stores.push(item);
      return opts.stored ?? "ended";
    },
    events: { publish: async (e: JobEvent) => void events.push(e) } as unknown as EventStream,
    signals: {
      stepBoundary: async (jobId: string, batch: { id: string; capMicros: number | null } | null, deltaMicros: number) => {
        boundaries.push({ jobId, batch, deltaMicros });
        return verdicts.shift() ?? "continue";
      },
    } as unknown as StopSignals,
    engine: new ScriptedEngine(),
    logger: Object.assign(Object.create(logger), { child: () => child, info: spy("info") }),
    stepDelayMs: 0,
    progressIntervalMs: 0,
    shuttingDown: opts.shuttingDown ?? (() => false),
  });
  const job = { data: { jobId: "sim_000000000001", requestId: "req-1" } } as unknown as Job;
  return { run: () => handle(job), events, stores, lines, boundaries };
}

describe("run-simulation handler", () => {
  it("sends no started event and no progress for the final step: progress of earlier steps, then completed", async () => {
    const h = harness({ claim: { kind: "claimed", job: claimed(1, { steps: 3 }) } });
    expect(await h.run()).toEqual({ outcome: "completed" });
    expect(h.events.map((e) => e.type)).toEqual(["progress", "progress", "completed"]);
    expect(h.events.map((e) => e.attempt)).toEqual([1, 1, 1]);
    expect(h.stores).toHaveLength(1);
    expect(h.stores[0]).toMatchObject({ jobId: "sim_000000000001", attempt: 1 });
    expect(h.lines).toEqual(
      expect.arrayContaining([
        { level: "debug", message: "simulation started" },
        { level: "info", message: "simulation completed" },
      ]),
    );
  });

  it("stores only the exports too costly to render per download (pdf), rendered from the run's result", async () => {
    const h = harness({ claim: { kind: "claimed", job: { ...claimed(1, { steps: 1 }), exportFormats: ["markdown", "pdf", "json"] } } });
    await h.run();
    expect(h.stores[0]!.exports.map((e) => [e.format, e.contentType])).toEqual([["pdf", "application/pdf"]]);
    expect(h.stores[0]!.exports[0]!.content.subarray(0, 5).toString()).toBe("%PDF-");
    const plain = harness({ claim: { kind: "claimed", job: claimed(1, { steps: 1 }) } });
    await plain.run();
    expect(plain.stores[0]!.exports).toEqual([]);
  });

  it("asks for stop signals after every step but the last; a capped batch's last step still adds its spending", async () => {
    const uncapped = harness({ claim: { kind: "claimed", job: claimed(1, { steps: 3 }) } });
    await uncapped.run();
    expect(uncapped.boundaries.map((b) => b.batch)).toEqual([null, null]);
    const capped = harness({ claim: { kind: "claimed", job: { ...claimed(1, { steps: 3 }), budgetCapMicros: 5_000_000 } } });
    await capped.run();
    expect(capped.boundaries.map((b) => b.batch)).toEqual(Array(3).fill({ id: "bat_1", capMicros: 5_000_000 }));
    const spent = capped.boundaries.reduce((n, b) => n + b.deltaMicros, 0);
    expect(spent).toBe((capped.stores[0] as { costMicros: number }).costMicros);
  });

  it("a one-step job sends only its completed event", async () => {
    const h = harness({ claim: { kind: "claimed", job: claimed(1, { steps: 1 }) } });
    await h.run();
    expect(h.events.map((e) => e.type)).toEqual(["completed"]);
    // Its result statement ended and charged it: the event says so, and names the batch the reconciler re-derives.
    expect(h.events[0]).toMatchObject({ type: "completed", ended: true, batchId: "bat_1", costMicros: h.stores[0]!.costMicros });
  });

  it("a stale attempt's result is refused: no completed event, outcome stale, a warning", async () => {
    const h = harness({ claim: { kind: "claimed", job: claimed(1, { steps: 2 }) }, stored: "stale" });
    expect(await h.run()).toEqual({ outcome: "stale" });
    expect(h.events.map((e) => e.type)).toEqual(["progress"]);
    expect(h.lines).toContainEqual({ level: "warn", message: "simulation result refused: attempt is stale" });
  });

  it("a stop requested while the last step ran ends the run cancelled, charged in full, after the last step's progress", async () => {
    const h = harness({ claim: { kind: "claimed", job: claimed(1, { steps: 2 }) }, stored: "stop-requested" });
    expect(await h.run()).toEqual({ outcome: "cancelled" });
    expect(h.events.map((e) => e.type)).toEqual(["progress", "progress", "cancelled"]);
    expect(h.events[1]).toMatchObject({ type: "progress", step: "step 2/2" });
    expect(h.events[2]).toMatchObject({ type: "cancelled", costMicros: h.stores[0]!.costMicros, tokens: h.stores[0]!.tokens });
  });

  it("a stop ends the run as cancelled after that step's progress", async () => {
    const h = harness({ claim: { kind: "claimed", job: claimed(2, { steps: 5 }) }, verdicts: ["continue", "cancelled"] });
    expect(await h.run()).toEqual({ outcome: "cancelled" });
    expect(h.events.map((e) => e.type)).toEqual(["progress", "progress", "cancelled"]);
    expect(h.stores).toHaveLength(0);
  });

  it("shutdown hands the job back", async () => {
    const h = harness({ claim: { kind: "claimed", job: claimed(1, { steps: 5 }) }, shuttingDown: () => true });
    await expect(h.run()).rejects.toBeInstanceOf(ShutdownInterrupt);
    expect(h.events.map((e) => e.type)).toEqual(["progress"]);
  });

  it("a cancel requested while no worker held the job ends it as cancelled", async () => {
    const h = harness({ claim: { kind: "cancel-requested", jobId: "sim_000000000001", attempt: 3, requestId: "req-1" } });
    expect(await h.run()).toEqual({ outcome: "cancelled" });
    expect(h.events).toEqual([expect.objectContaining({ type: "cancelled", attempt: 3 })]);
  });
});
