import { redisKeys } from "@simbatch/contracts";
import type { Redis } from "./redis.ts";

/**
 * Lifetime of stop keys and batch spending (refreshed on every write): far
 * longer than any run, and bounded, so an abandoned key goes away by itself.
 */
export const SIGNAL_TTL_S = 7 * 24 * 3600;

/**
 * Stop signals for running jobs and live batch spending.
 *
 * A worker calls `stepBoundary` after each step: one round trip that adds the
 * step's spending to its batch's live total and answers whether to stop (the job
 * was cancelled or interrupted, or the batch's spending reached its cap). Doing
 * the budget check atomically in Redis is what bounds the overshoot to one step
 * per running job, however fast steps are.
 *
 * KEYS: the job's stop key, then its batch's spending key when the batch has a
 * cap to count against (a job with no batch passes one key: a placeholder key
 * would hash elsewhere on a Redis Cluster). ARGV: step spending, cap.
 */
const STEP_BOUNDARY_LUA = `
local stop = redis.call('EXISTS', KEYS[1])
if #KEYS > 1 then
  local spent = redis.call('HINCRBY', KEYS[2], 'spent', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ${SIGNAL_TTL_S})
  local cap = tonumber(ARGV[2])
  if cap and cap > 0 and spent >= cap then
    redis.call('HSET', KEYS[2], 'exhausted', '1')
    return 2
  end
  if redis.call('HGET', KEYS[2], 'exhausted') == '1' then return 2 end
end
return stop
`;

export type StopVerdict = "continue" | "cancelled" | "budget";

export class StopSignals {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    // No fixed key count: each call passes 1 or 2 (see STEP_BOUNDARY_LUA).
    this.redis.defineCommand("simbatchStepBoundary", { lua: STEP_BOUNDARY_LUA });
  }

  private cancelKey = (jobId: string) => redisKeys(this.prefix).cancel(jobId);
  private spendKey = (batchId: string) => redisKeys(this.prefix).batchSpend(batchId);

  async requestStop(jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    const multi = this.redis.multi();
    for (const id of jobIds) multi.set(this.cancelKey(id), "1", "EX", SIGNAL_TTL_S);
    await multi.exec();
  }

  /** Marks a batch's budget exhausted so all its running jobs stop at their next step. */
  async markBudgetExhausted(batchId: string): Promise<void> {
    await this.redis.multi().hset(this.spendKey(batchId), "exhausted", "1").expire(this.spendKey(batchId), SIGNAL_TTL_S).exec();
  }

  private boundaries: { args: (string | number)[]; resolve: (v: StopVerdict) => void; reject: (err: unknown) => void }[] = [];
  private boundaryFlushScheduled = false;

  /**
   * One Lua call per step of a job, atomic on its own. The calls of jobs that
   * reach a step boundary within the same tick travel in one pipeline (one
   * write), each still its own script run with its own answer.
   */
  stepBoundary(jobId: string, batch: { id: string; capMicros: number | null } | null, deltaMicros: number): Promise<StopVerdict> {
    const args = batch ? [2, this.cancelKey(jobId), this.spendKey(batch.id), deltaMicros, batch.capMicros ?? 0] : [1, this.cancelKey(jobId), deltaMicros, 0];
    return new Promise<StopVerdict>((resolve, reject) => {
      this.boundaries.push({ args, resolve, reject });
      if (!this.boundaryFlushScheduled) {
        this.boundaryFlushScheduled = true;
        setImmediate(() => this.flushBoundaries());
      }
    });
  }

  private flushBoundaries(): void {
    this.boundaryFlushScheduled = false;
    const calls = this.boundaries;
    this.boundaries = [];
    const verdictOf = (v: unknown): StopVerdict => (v === 2 ? "budget" : v === 1 ? "cancelled" : "continue");
    if (calls.length === 1) {
      const [only] = calls;
      (this.redis as unknown as StepBoundaryCommand).simbatchStepBoundary(...only!.args).then((v) => only!.resolve(verdictOf(v)), only!.reject);
      return;
    }
    // On a pipeline the script command queues (it returns the pipeline, not a promise).
    const pipeline = this.redis.pipeline() as unknown as {
      simbatchStepBoundary(...args: Parameters<StepBoundaryCommand["simbatchStepBoundary"]>): unknown;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const c of calls) pipeline.simbatchStepBoundary(...c.args);
    void pipeline.exec().then(
      (results) =>
        calls.forEach((c, i) => {
          const [err, v] = results?.[i] ?? [new Error("step boundary: no reply"), null];
          if (err) c.reject(err);
          else c.resolve(verdictOf(v));
        }),
      (err) => calls.forEach((c) => c.reject(err)),
    );
  }
}

interface StepBoundaryCommand {
  simbatchStepBoundary(...args: (string | number)[]): Promise<number>;
}
