import type { Response } from "express";
import { Stream } from "../src/live/hub.ts";

/** A stream on a fake response that records each write's events and when (fake timers: the clock is the test's). */
function open() {
  const writes: { at: number; data: string[] }[] = [];
  let endedAt: number | null = null;
  const res = {
    destroyed: false,
    write(text: string) {
      writes.push({ at: Date.now(), data: [...text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1]!) as { k: string }).k) });
      return true;
    },
    end() {
      endedAt = Date.now();
    },
  } as unknown as Response;
  const stream = new Stream(res, "u", "slot", 1, 250);
  const job = (id: string, v: number) => ({ key: `job:${id}`, event: "job", data: { k: `${id}${v}` } });
  const batch = (v: number | string) => ({ key: "batch", event: "batch", data: { k: `B${v}` } });
  const sent = () => writes.flatMap((w) => w.data);
  return { stream, writes, sent, endedAt: () => endedAt, job, batch };
}

describe("a live stream's pacing", () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it("sends one event per turn, 250 ms apart, alternating the batch with its jobs, each with its latest state", () => {
    const s = open();
    s.stream.send([s.batch(0)]); // the snapshot
    jest.advanceTimersByTime(0);
    s.stream.send([s.job("x", 0), s.job("y", 0), s.batch(1)]);
    // x0 and B1 are replaced while they wait, and go to the back.
    s.stream.send([s.job("x", 1), s.batch(2)]);
    jest.advanceTimersByTime(5_000);
    expect(s.writes.map((w) => w.data.length)).toEqual([1, 1, 1, 1]);
    expect(s.sent()).toEqual(["B0", "y0", "B2", "x1"]);
    for (let i = 1; i < s.writes.length; i++) expect(s.writes[i]!.at - s.writes[i - 1]!.at).toBe(250);
    expect(s.endedAt()).toBeNull();
  });

  it("ends after every waiting job's last state, with the terminal batch last", () => {
    const s = open();
    s.stream.send([s.batch(0)]);
    jest.advanceTimersByTime(0);
    s.stream.send([s.job("y", 0)]);
    jest.advanceTimersByTime(250);
    // The batch's turn would come next; once the stream ends, its jobs go first.
    s.stream.send([s.job("x", 0), s.job("z", 0), s.batch("end")]);
    s.stream.end();
    jest.advanceTimersByTime(5_000);
    expect(s.sent()).toEqual(["B0", "y0", "x0", "z0", "Bend"]);
    expect(s.endedAt()).toBe(s.writes[s.writes.length - 1]!.at);
  });

  it("on shutdown sends what waits at once and ends", () => {
    const s = open();
    s.stream.send([s.batch(0)]);
    jest.advanceTimersByTime(0);
    s.stream.send([s.job("x", 0), s.batch(1)]);
    s.stream.end(true);
    expect(s.sent()).toEqual(["B0", "x0", "B1"]);
    expect(s.endedAt()).not.toBeNull();
  });
});
