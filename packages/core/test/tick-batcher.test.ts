import { TickBatcher } from "../src/claim.ts";

/** A run whose batches the test ends by hand, recording what each batch held. */
function gatedRun() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const run = (items: number[]) =>
    new Promise<number[]>((resolve) => {
      batches.push(items);
      gates.push(() => resolve(items.map((x) => x * 10)));
    });
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
    if (!cond()) throw new Error("condition never held");
  };
  return { batches, gates, run, until };
}

describe("TickBatcher", () => {
  it("runs the calls of one tick as one batch and answers each caller with its own item's result", async () => {
    const g = gatedRun();
    const b = new TickBatcher(g.run);
    const answers = Promise.all([b.submit(1), b.submit(2), b.submit(3)]);
    await g.until(() => g.batches.length === 1);
    g.gates[0]!();
    expect(await answers).toEqual([10, 20, 30]);
    expect(g.batches).toEqual([[1, 2, 3]]);
  });

  it("holds calls made while a batch runs and sends them together when it ends", async () => {
    const g = gatedRun();
    const b = new TickBatcher(g.run);
    const first = b.submit(1);
    await g.until(() => g.batches.length === 1);
    // Three more calls over three ticks while the first batch is still running.
    const later: Promise<number>[] = [];
    for (const x of [2, 3, 4]) {
      later.push(b.submit(x));
      await new Promise((r) => setImmediate(r));
    }
    expect(g.batches).toHaveLength(1);
    g.gates[0]!();
    expect(await first).toBe(10);
    await g.until(() => g.batches.length === 2);
    expect(g.batches[1]).toEqual([2, 3, 4]);
    g.gates[1]!();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  it("runs up to maxInFlight batches at once, each at most maxBatch long", async () => {
    const g = gatedRun();
    const b = new TickBatcher(g.run, 2, 2);
    const all = Promise.all([1, 2, 3, 4, 5].map((x) => b.submit(x)));
    await g.until(() => g.batches.length === 2);
    expect(g.batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    g.gates[1]!();
    await g.until(() => g.batches.length === 3);
    expect(g.batches[2]).toEqual([5]);
    g.gates[0]!();
    g.gates[2]!();
    expect(await all).toEqual([10, 20, 30, 40, 50]);
  });

  it("rejects every caller of a failed batch and goes on with the next", async () => {
    let calls = 0;
    const b = new TickBatcher<number, number>(async (items) => {
      calls++;
      if (calls === 1) throw new Error("statement failed");
      return items;
    });
    const failed = [b.submit(1), b.submit(2)].map((p) => p.catch((e: Error) => e.message));
    expect(await Promise.all(failed)).toEqual(["statement failed", "statement failed"]);
    expect(await b.submit(3)).toBe(3);
  });
});
