import { planDispatch, type Candidate, type GroupState, type PlanInput, type UserState } from "../src/dispatch-plan.ts";

/** Builds planner input: batches of `n` jobs each (request order), users with their state. */
function input(free: number, batches: Batch[], users: Record<string, Partial<UserState>>): PlanInput {
  const groups: PlanInput["groups"] = new Map();
  for (const b of batches) {
    const queue: Candidate[] = Array.from({ length: b.n }, (_, i) => ({
      id: `${b.id}-${i}`,
      ownerId: b.owner,
      batchId: b.single ? null : b.id,
      priority: b.priority ?? 50,
      estimateMicros: b.estimates?.[i] ?? 10_000,
      createdAt: (b.createdAt ?? 0) + i,
      requestId: null,
    }));
    const state: GroupState = { slots: b.slots ?? 3, capMicros: b.cap ?? null, committedMicros: b.committed ?? 0, active: b.active ?? 0 };
    groups.set(b.id, { state, queue });
  }
  const userMap = new Map(Object.entries(users).map(([id, u]) => [id, { active: 0, limit: -1, lastReleasedAt: 0, ...u }]));
  return { free, groups, users: userMap };
}

interface Batch {
  id: string;
  owner: string;
  n: number;
  slots?: number;
  priority?: number;
  cap?: number;
  committed?: number;
  active?: number;
  estimates?: number[];
  createdAt?: number;
  single?: boolean;
}

const ids = (p: ReturnType<typeof planDispatch>) => p.release.map((c) => c.id);

describe("planDispatch", () => {
  it("releases no more than the free worker capacity", () => {
    expect(ids(planDispatch(input(2, [{ id: "a", owner: "u", n: 5, slots: 5 }], { u: {} })))).toEqual(["a-0", "a-1"]);
    expect(ids(planDispatch(input(0, [{ id: "a", owner: "u", n: 5 }], { u: {} })))).toEqual([]);
  });

  it("starts nothing for an owner at the monthly cost limit and reports their groups", () => {
    const plan = planDispatch(
      input(
        4,
        [
          { id: "a", owner: "spent", n: 2 },
          { id: "s", owner: "spent", n: 1, single: true },
          { id: "b", owner: "fine", n: 2 },
        ],
        { spent: { quotaExhausted: true }, fine: {} },
      ),
    );
    expect(ids(plan)).toEqual(["b-0", "b-1"]);
    expect(plan.quotaExhausted.sort()).toEqual(["a", "s"]);
    expect(plan.budgetExhausted).toEqual([]);
  });

  it("releases a batch's jobs in request order, no more than its free parallel_jobs slots", () => {
    expect(ids(planDispatch(input(10, [{ id: "a", owner: "u", n: 5, slots: 2 }], { u: {} })))).toEqual(["a-0", "a-1"]);
    expect(ids(planDispatch(input(10, [{ id: "a", owner: "u", n: 5, slots: 0, active: 3 }], { u: {} })))).toEqual([]);
  });

  it("keeps a user's running jobs, single and batch together, within the tier's concurrency", () => {
    const plan = planDispatch(
      input(
        10,
        [
          { id: "a", owner: "u", n: 5, slots: 5 },
          { id: "s", owner: "u", n: 1, slots: 1, single: true },
        ],
        { u: { active: 1, limit: 3 } },
      ),
    );
    expect(plan.release).toHaveLength(2);
    expect(planDispatch(input(10, [{ id: "a", owner: "u", n: 5 }], { u: { active: 1, limit: 1 } })).release).toEqual([]);
    expect(planDispatch(input(10, [{ id: "a", owner: "u", n: 50, slots: 50 }], { u: { active: 40, limit: -1 } })).release).toHaveLength(10);
  });

  it("serves higher priority first, whatever the age", () => {
    const plan = planDispatch(
      input(
        3,
        [
          { id: "low", owner: "u", n: 3, priority: 25, createdAt: 0 },
          { id: "high", owner: "v", n: 2, priority: 75, createdAt: 100 },
        ],
        { u: {}, v: { active: 5 } },
      ),
    );
    expect(ids(plan)).toEqual(["high-0", "high-1", "low-0"]);
  });

  it("at equal priority, alternates between users by fewest active jobs", () => {
    const plan = planDispatch(
      input(
        4,
        [
          { id: "big", owner: "e", n: 100, slots: 100, createdAt: 0 },
          { id: "small", owner: "p", n: 2, createdAt: 1000 },
        ],
        { e: {}, p: {} },
      ),
    );
    expect(ids(plan)).toEqual(["big-0", "small-0", "big-1", "small-1"]);
    const busy = planDispatch(
      input(
        1,
        [
          { id: "big", owner: "e", n: 100, slots: 100, createdAt: 0 },
          { id: "small", owner: "p", n: 2, createdAt: 1000 },
        ],
        { e: { active: 3 }, p: { active: 1 } },
      ),
    );
    expect(ids(busy)).toEqual(["small-0"]);
  });

  it("gives each released job its owner's jobs in flight before it, its fair-share place in BullMQ", () => {
    const plan = planDispatch(
      input(
        5,
        [
          { id: "big", owner: "e", n: 100, slots: 100, createdAt: 0 },
          { id: "small", owner: "p", n: 2, createdAt: 1000 },
        ],
        { e: { active: 4 }, p: { active: 1 } },
      ),
    );
    expect(plan.release.map((c) => [c.id, c.share])).toEqual([
      ["small-0", 1],
      ["small-1", 2],
      ["big-0", 4],
      ["big-1", 5],
      ["big-2", 6],
    ]);
  });

  it("with one free slot and no active jobs, serves the user served least recently, not the oldest batch", () => {
    const users = { e: { lastReleasedAt: 5_000 }, p: { lastReleasedAt: 0 } };
    const batches = () => [
      { id: "big", owner: "e", n: 100, slots: 100, createdAt: 0 },
      { id: "small", owner: "p", n: 2, createdAt: 1000 },
    ];
    expect(ids(planDispatch(input(1, batches(), users)))).toEqual(["small-0"]);
    expect(ids(planDispatch(input(1, batches(), { e: { lastReleasedAt: 5_000 }, p: { lastReleasedAt: 6_000 } })))).toEqual(["big-0"]);
  });

  it("starts a job only if charged + running estimates + its estimate fit the cap", () => {
    const plan = planDispatch(input(10, [{ id: "a", owner: "u", n: 5, slots: 5, cap: 35_000, committed: 0 }], { u: {} }));
    expect(ids(plan)).toEqual(["a-0", "a-1", "a-2"]);
    expect(plan.budgetExhausted).toEqual([]);
    // The next job waits (not stopped) while others run: they may cost less than estimated.
    const waiting = planDispatch(input(10, [{ id: "a", owner: "u", n: 2, cap: 35_000, committed: 30_000, active: 1 }], { u: {} }));
    expect(waiting).toEqual({ release: [], budgetExhausted: [], quotaExhausted: [] });
  });

  it("stops a batch whose next job cannot fit once nothing of it is running", () => {
    const plan = planDispatch(
      input(
        10,
        [
          { id: "a", owner: "u", n: 2, cap: 35_000, committed: 30_000, active: 0 },
          { id: "b", owner: "u", n: 1 },
        ],
        { u: {} },
      ),
    );
    expect(plan.budgetExhausted).toEqual(["a"]);
    expect(ids(plan)).toEqual(["b-0"]);
  });

  it("keeps request order under a cap: a later, cheaper job does not jump a blocked one", () => {
    const plan = planDispatch(input(10, [{ id: "a", owner: "u", n: 3, slots: 3, cap: 30_000, estimates: [10_000, 25_000, 1_000] }], { u: {} }));
    expect(ids(plan)).toEqual(["a-0"]);
  });

  it("with no free slot, releases only jobs that outrank every queued one, highest first, within the overtake window", () => {
    const batches = () => [
      { id: "low", owner: "u", n: 3, slots: 3, priority: 10 },
      { id: "mid", owner: "u", n: 3, slots: 3, priority: 50 },
      { id: "high", owner: "v", n: 3, slots: 3, priority: 90 },
    ];
    const plan = (abovePriority: number, window: number) =>
      ids(planDispatch({ ...input(0, batches(), { u: {}, v: {} }), overtake: { free: window, abovePriority } }));
    // Queued jobs are at priority 50: only the 90 batch may jump them.
    expect(plan(50, 4)).toEqual(["high-0", "high-1", "high-2"]);
    // Queued at 10: both higher batches, in priority order, up to the window.
    expect(plan(10, 4)).toEqual(["high-0", "high-1", "high-2", "mid-0"]);
    // Nothing queued outranked: nothing released.
    expect(plan(90, 4)).toEqual([]);
  });

  it("fills free slots first, then overtakes only with higher-priority jobs", () => {
    const p = planDispatch({
      ...input(
        1,
        [
          { id: "low", owner: "u", n: 3, slots: 3, priority: 10 },
          { id: "high", owner: "v", n: 1, slots: 3, priority: 90 },
        ],
        { u: {}, v: {} },
      ),
      overtake: { free: 5, abovePriority: 50 },
    });
    // The free slot goes to the best job; the lower one cannot overtake queued priority-50 jobs.
    expect(ids(p)).toEqual(["high-0"]);
    const lowOnly = planDispatch({
      ...input(1, [{ id: "low", owner: "u", n: 3, slots: 3, priority: 10 }], { u: {} }),
      overtake: { free: 5, abovePriority: 50 },
    });
    expect(ids(lowOnly)).toEqual(["low-0"]);
  });
});
