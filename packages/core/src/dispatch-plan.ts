/**
 * Pure dispatch planning: which waiting jobs to release into BullMQ now.
 * Kept free of I/O so the ordering rules are unit-tested directly.
 */
export interface Candidate {
  id: string;
  ownerId: string;
  /** Batch id, or null for a single job. */
  batchId: string | null;
  priority: number;
  estimateMicros: number;
  createdAt: number;
  requestId: string | null;
}

export interface GroupState {
  /** Free slots under parallel_jobs (1 for a single job). */
  slots: number;
  capMicros: number | null;
  /** Charged so far + estimates of the group's running or released jobs. */
  committedMicros: number;
  /** Jobs of the group running or released. */
  active: number;
}

export interface UserState {
  active: number;
  limit: number;
  /** The monthly cost limit is reached: none of the user's waiting jobs may start. */
  quotaExhausted?: boolean;
  /** Epoch ms of the user's latest release; 0 when never. Breaks ties round-robin. */
  lastReleasedAt: number;
}

export interface PlanInput {
  free: number;
  /**
   * Releases beyond `free` for jobs that outrank a job already released but not
   * started: BullMQ hands them out before it, so a waiting job never starts after
   * a lower-priority one that the look-ahead queued earlier. `abovePriority` is the
   * lowest priority released and not started; `free` bounds how far the queue may
   * grow this way.
   */
  overtake?: { free: number; abovePriority: number };
  /** Candidates per group, in request order. */
  groups: Map<string, { state: GroupState; queue: Candidate[] }>;
  /** Per user: running or released jobs, concurrency (-1 = unlimited), and when a job of theirs was last released. */
  users: Map<string, UserState>;
}

/** A job the plan releases, with its owner's jobs released or running just before it (its fair-share place in BullMQ). */
export type Release = Candidate & { share: number };

export interface Plan {
  release: Release[];
  /** Batches whose next job can never fit their budget: stop them. */
  budgetExhausted: string[];
  /** Groups (batch ids, or single job ids) whose owner reached the monthly cost limit. */
  quotaExhausted: string[];
}

/**
 * Releases up to `free` jobs. Order: higher priority first; at equal priority the
 * user with fewest active jobs (fair share across users), then the user served
 * least recently (so one free slot alternates between users instead of going to
 * the oldest batch every time); then the oldest job.
 * A batch's jobs go in request order; one that does not fit the budget blocks the
 * batch, and when nothing of the batch is running it never will fit.
 */
export function planDispatch(input: PlanInput): Plan {
  const release: Release[] = [];
  const exhausted = new Set<string>();
  const quotaExhausted = new Set<string>();
  for (const [key, g] of input.groups) {
    const head = g.queue[0];
    if (head && input.users.get(head.ownerId)?.quotaExhausted) quotaExhausted.add(key);
  }
  for (const [key, g] of input.groups) {
    if (quotaExhausted.has(key)) continue;
    const head = g.queue[0];
    if (head?.batchId && g.state.capMicros !== null && g.state.active === 0 && g.state.committedMicros + head.estimateMicros > g.state.capMicros) {
      exhausted.add(key);
    }
  }
  let free = input.free;
  let overtake = input.overtake?.free ?? 0;
  const above = input.overtake?.abovePriority ?? Number.MAX_SAFE_INTEGER;
  let tick = Number.MAX_SAFE_INTEGER - input.free - overtake;
  while (free > 0 || overtake > 0) {
    let best: { key: string; job: Candidate } | null = null;
    for (const [key, g] of input.groups) {
      const job = g.queue[0];
      if (!job || g.state.slots <= 0 || exhausted.has(key) || quotaExhausted.has(key)) continue;
      if (free <= 0 && job.priority <= above) continue;
      const user = input.users.get(job.ownerId)!;
      if (user.limit >= 0 && user.active >= user.limit) continue;
      if (g.state.capMicros !== null && g.state.committedMicros + job.estimateMicros > g.state.capMicros) continue;
      if (!best || better(job, best.job, input.users)) best = { key, job };
    }
    if (!best) break;
    const g = input.groups.get(best.key)!;
    g.queue.shift();
    g.state.slots--;
    g.state.active++;
    g.state.committedMicros += best.job.estimateMicros;
    const owner = input.users.get(best.job.ownerId)!;
    release.push({ ...best.job, share: owner.active });
    owner.active++;
    owner.lastReleasedAt = tick++; // later than any stored release: served just now
    if (free > 0) free--;
    else overtake--;
  }
  return { release, budgetExhausted: [...exhausted], quotaExhausted: [...quotaExhausted] };
}

function better(a: Candidate, b: Candidate, users: PlanInput["users"]): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  const ua = users.get(a.ownerId)!;
  const ub = users.get(b.ownerId)!;
  if (ua.active !== ub.active) return ua.active < ub.active;
  if (ua.lastReleasedAt !== ub.lastReleasedAt) return ua.lastReleasedAt < ub.lastReleasedAt;
  return a.createdAt < b.createdAt;
}
