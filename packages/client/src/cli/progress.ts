import { SingleBar } from "cli-progress";
import type { Batch } from "../types.ts";
import { batchLine, usd } from "./format.ts";

export interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Shows a batch's progress while the CLI waits on it. */
export interface ProgressView {
  /** A bar redrawn in place (true), or lines that stay (false). */
  readonly live: boolean;
  update(batch: Batch): void;
  stop(): void;
}

/**
 * A live bar on a terminal (cli-progress redraws one line in place), else one
 * plain line per change, for logs and pipes.
 */
export function progressView(out: Out): ProgressView {
  return out.isTTY ? new BarView(out) : new LineView(out);
}

/** Shows nothing (`--json` when no one watches stderr). */
export const silentView: ProgressView = { live: false, update: () => undefined, stop: () => undefined };

class LineView implements ProgressView {
  readonly live = false;
  private last = "";
  constructor(private readonly out: Out) {}

  update(batch: Batch): void {
    const line = batchLine(batch);
    if (line === this.last) return;
    this.last = line;
    this.out.write(`${line}\n`);
  }

  stop(): void {}
}

class BarView implements ProgressView {
  readonly live = true;
  private bar: SingleBar | null = null;
  constructor(private readonly out: Out) {}

  update(batch: Batch): void {
    const p = batch.progress;
    const done = p.completed_jobs + p.failed_jobs + p.cancelled_jobs;
    const payload = {
      id: batch.batch_id,
      status: batch.paused ? `${batch.status} (paused)` : batch.status,
      running: p.running_jobs,
      failed: p.failed_jobs,
      cancelled: p.cancelled_jobs,
      cost: usd(batch.cost.actual_cost_usd),
    };
    if (!this.bar) {
      this.bar = new SingleBar({
        stream: this.out as NodeJS.WritableStream,
        format: "{id} [{bar}] {percentage}% | {value}/{total} jobs | {status} | running {running} failed {failed} cancelled {cancelled} | {cost}",
        barCompleteChar: "█",
        barIncompleteChar: "░",
        barsize: 24,
        hideCursor: true,
        linewrap: false,
        // The last state is drawn at stop(); in between, at most 10 redraws a second.
        fps: 10,
      });
      this.bar.start(p.total_jobs, done, payload);
    } else {
      this.bar.update(done, payload);
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
