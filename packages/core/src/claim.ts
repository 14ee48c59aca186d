import { periodOf } from "@simbatch/contracts";
import { inPreparedTransaction, Prisma, prepared, rawOf, type Db } from "@simbatch/db";
import { activeById, attemptCharge, chargeEnded, reportedSpending } from "./sql.ts";

/** Default cap on a job's attempts (MAX_JOB_ATTEMPTS). */
export const DEFAULT_MAX_JOB_ATTEMPTS = 5;

/** The error message of a job that used up its attempts. */
export const attemptsExhaustedMessage = (attempts: number): string =>
  `Job failed after ${attempts} attempts: none of its runs finished (worker crashes or errors outside the simulation)`;

export interface ClaimedJob {
  id: string;
  ownerId: string;
  batchId: string | null;
  attempt: number;
  budgetCapMicros: number | null;
  templateId: string | null;
  description: string | null;
  entityCount: number;
  timepointCount: number;
  temporalMode: string;
  config: Record<string, unknown>;
  generateSummaries: boolean;
  exportFormats: string[];
  requestId: string | null;
}

interface ClaimRow {
  id: string;
  owner_id: string;
  batch_id: string | null;
  attempts: number;
  cap: bigint | number | string | null;
  template_id: string | null;
  description: string | null;
  entity_count: number;
  timepoint_count: number;
  temporal_mode: string;
  config: Record<string, unknown>;
  generate_summaries: boolean;
  export_formats: string[];
  request_id: string | null;
}

export type ClaimResult =
  | { kind: "claimed"; job: ClaimedJob }
  /** Cancel was requested while a crashed attempt held it: end it as cancelled. */
  | { kind: "cancel-requested"; jobId: string; attempt: number; requestId: string | null }
  | { kind: "not-runnable"; status: string | null }
  /**
   * The job's current attempt already finished (its outcome is recorded; the
   * event may still wait in the stream): it must not run again.
   */
  | { kind: "finished"; jobId: string; attempt: number }
  /**
   * The job used its MAX_JOB_ATTEMPTS: its last attempt's FAILED outcome is now
   * recorded (with that attempt's last reported spending); the caller publishes it.
   */
  | { kind: "exhausted"; jobId: string; attempt: number; requestId: string | null; costMicros: number; tokens: number; errorMessage: string; at: Date };

export interface ClaimBatchResult {
  /** One result per distinct job id asked for. */
  results: Map<string, ClaimResult>;
  /** Batches this claim moved from PENDING to RUNNING (their first claimed job). */
  startedBatches: string[];
}

/**
 * Collects calls and runs them in batches; every caller gets its own item's
 * answer, or its batch's error. A batch starts at the end of the tick its first
 * call was made in (a setImmediate window), and at most `maxInFlight` batches run
 * at once: calls made while they run wait and go together in the next one. Under
 * load the batches grow by themselves (a statement per tick made many small
 * statements contend for the same counter rows, each paying planning, triggers
 * and a commit); idle, a call waits for nothing but its own tick.
 */
export class TickBatcher<I, O> {
  private pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 200,
    private readonly maxInFlight = 1,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.inFlight++;
      this.run(batch.map((b) => b.item))
        .then(
          (out) => batch.forEach((b, k) => b.resolve(out[k]!)),
          (err) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.schedule();
        });
    }
  }
}

const toClaimedJob = (r: ClaimRow): ClaimedJob => ({
  id: r.id,
  ownerId: r.owner_id,
  batchId: r.batch_id,
  attempt: r.attempts,
  budgetCapMicros: r.cap === null ? null : Number(r.cap),
  templateId: r.template_id,
  description: r.description,
  entityCount: r.entity_count,
  timepointCount: r.timepoint_count,
  temporalMode: r.temporal_mode,
  config: r.config,
  generateSummaries: r.generate_summaries,
  exportFormats: r.export_formats,
  requestId: r.request_id,
});

/**
 * Takes released jobs for a run in one statement: PENDING (released) → RUNNING,
 * or a RUNNING job whose previous attempt's worker died (BullMQ redelivered it).
 * Each claim is a new attempt. A claim that supersedes a RUNNING attempt charges
 * that attempt's last reported spending (a ledger row for (job, old attempt),
 * unique, so it is charged once) and carries it in `carried_cost_micros`: the
 * job's `cost_micros` stays the sum over its attempts.
 *
 * Never claimed: a job whose current attempt has a recorded outcome (it ran to
 * its end; its event may be unapplied: "finished"), and a job that already used
 * `maxAttempts` (its last attempt's FAILED outcome is recorded: "exhausted").
 *
 * The same statement moves the claimed jobs' batches from PENDING to RUNNING; a
 * batch row locked by someone else is skipped rather than waited for, so the
 * claim never waits on a batch lock while holding job rows and cannot deadlock
 * with a cancel that locks the batch before its jobs. The holder (another claim,
 * a cancel, a reconciler evaluating the batch) cannot see this claim's jobs, so a
 * skipped batch that still reads PENDING is started by a second statement after
 * the claim commits.
 */
export async function claimJobs(db: Db, jobIds: string[], maxAttempts = DEFAULT_MAX_JOB_ATTEMPTS): Promise<ClaimBatchResult> {
  const ids = [...new Set(jobIds)];
  const results = new Map<string, ClaimResult>();
  if (ids.length === 0) return { results, startedBatches: [] };
  const now = new Date();
  const period = periodOf(now);
  // A prepared statement (planning it took a third of its time), in a transaction of its own for that.
  const [out] = await inPreparedTransaction(db, (tx) =>
    tx.$queryRaw<
      {
        claimed: ClaimRow[] | string | null;
        started_batches: string[] | null;
        skipped_batches: string[] | null;
        exhausted: ExhaustedRow[] | string | null;
        finished: { id: string; attempt: number }[] | string | null;
      }[]
    >(
      prepared(
        "claim_jobs",
        Prisma.sql`
    WITH cand AS (
      SELECT j.id, j.status::text AS status, j.attempts, j.owner_id, j.batch_id, j.request_id,
        (j.cost_micros - j.carried_cost_micros) AS attempt_cost, (j.tokens_used - j.carried_tokens) AS attempt_tokens,
        (j.status = 'RUNNING' AND EXISTS (SELECT 1 FROM job_attempt_outcomes o WHERE o.job_id = j.id AND o.attempt = j.attempts)) AS ended
      FROM simulation_jobs j
      WHERE j.id = ANY(${ids}::text[]) AND NOT j.cancel_requested
        AND ${activeById("j")}
      FOR UPDATE OF j
    ), exhausted AS (
      INSERT INTO job_attempt_outcomes (job_id, attempt, status, cost_micros, tokens, error_message, ended_at)
      SELECT c.id, c.attempts, 'FAILED', GREATEST(c.attempt_cost, 0), GREATEST(c.attempt_tokens, 0),
        'Job failed after ' || c.attempts || ' attempts: none of its runs finished (worker crashes or errors outside the simulation)', ${now}::timestamp
      FROM cand c WHERE NOT c.ended AND c.status = 'RUNNING' AND c.attempts >= ${maxAttempts}::int
      ON CONFLICT (job_id, attempt) DO NOTHING
      RETURNING job_id, attempt, cost_micros, tokens, error_message
    ), claimed AS (
      UPDATE simulation_jobs j SET status = 'RUNNING', attempts = j.attempts + 1, started_at = COALESCE(j.started_at, now()),
        carried_cost_micros = j.cost_micros, carried_tokens = j.tokens_used, progress_percent = 0, current_step = 'starting'
      FROM cand c
      WHERE j.id = c.id AND NOT c.ended AND NOT (c.status = 'RUNNING' AND c.attempts >= ${maxAttempts}::int)
      RETURNING j.id, j.owner_id, j.batch_id, j.attempts, j.template_id, j.description, j.entity_count, j.timepoint_count,
        j.temporal_mode::text AS temporal_mode, j.config, j.generate_summaries, j.export_formats, j.request_id,
        c.status AS prev_status, c.attempt_cost, c.attempt_tokens
    ), superseded AS (
      INSERT INTO ledger_entries (user_id, period, kind, job_id, batch_id, attempt, cost_micros, tokens)
      SELECT c.owner_id, ${period}, 'CHARGE'::"LedgerKind", c.id, c.batch_id, c.attempts - 1, GREATEST(c.attempt_cost, 0), GREATEST(c.attempt_tokens, 0)
      FROM claimed c WHERE c.prev_status = 'RUNNING' AND (c.attempt_cost > 0 OR c.attempt_tokens > 0)
      ON CONFLICT (job_id, attempt) DO NOTHING
    ), claimed_batches AS (
      -- The claimed jobs' batches as one array: every batch lookup below is by id
      -- (a join of the claimed rows with batches planned as a nested loop over a
      -- scan of batches took 13 ms with 29 batches, and grew with them).
      SELECT ARRAY(SELECT DISTINCT c.batch_id FROM claimed c WHERE c.batch_id IS NOT NULL) AS ids
    ), started AS (
      -- A batch starts with its first job: a job an earlier claim started (its batch row was
      -- locked then, so that claim skipped it) may predate this statement.
      UPDATE batches b SET status = 'RUNNING', started_at = CASE WHEN b.started_at IS NOT NULL THEN b.started_at
        ELSE LEAST(now(), (SELECT min(j.started_at) FROM simulation_jobs j WHERE j.batch_id = b.id)) END
      WHERE b.id = ANY(ARRAY(
        SELECT p.id FROM batches p
        WHERE p.id = ANY((SELECT ids FROM claimed_batches)::text[]) AND p.status = 'PENDING'
        FOR UPDATE SKIP LOCKED))
        AND b.status = 'PENDING'
      RETURNING b.id
    )
    SELECT
      (SELECT json_agg(json_build_object('id', c.id, 'owner_id', c.owner_id, 'batch_id', c.batch_id, 'attempts', c.attempts,
        'template_id', c.template_id, 'description', c.description, 'entity_count', c.entity_count, 'timepoint_count', c.timepoint_count,
        'temporal_mode', c.temporal_mode, 'config', c.config, 'generate_summaries', c.generate_summaries, 'export_formats', c.export_formats,
        'request_id', c.request_id, 'cap', (SELECT b.budget_cap_micros FROM batches b WHERE b.id = c.batch_id))) FROM claimed c) AS claimed,
      (SELECT array_agg(s.id) FROM started s) AS started_batches,
      -- Batches still PENDING whose row another transaction held (skipped above): started after commit.
      (SELECT array_agg(b.id) FROM batches b
        WHERE b.id = ANY((SELECT ids FROM claimed_batches)::text[]) AND b.status = 'PENDING' AND b.id <> ALL (ARRAY(SELECT s.id FROM started s))) AS skipped_batches,
      (SELECT json_agg(json_build_object('id', x.job_id, 'attempt', x.attempt, 'cost', x.cost_micros, 'tokens', x.tokens, 'error', x.error_message,
        'request_id', (SELECT c.request_id FROM cand c WHERE c.id = x.job_id))) FROM exhausted x) AS exhausted,
      (SELECT json_agg(json_build_object('id', c.id, 'attempt', c.attempts)) FROM cand c WHERE c.ended) AS finished`,
      ),
    ),
  );
  const parse = <T>(v: T[] | string | null | undefined): T[] => (v == null ? [] : typeof v === "string" ? (JSON.parse(v) as T[]) : v);
  for (const r of parse(out?.claimed)) results.set(r.id, { kind: "claimed", job: toClaimedJob(r) });
  for (const x of parse(out?.exhausted)) {
    results.set(x.id, {
      kind: "exhausted",
      jobId: x.id,
      attempt: x.attempt,
      requestId: x.request_id,
      costMicros: Number(x.cost),
      tokens: Number(x.tokens),
      errorMessage: x.error,
      at: now,
    });
  }
  for (const f of parse(out?.finished)) results.set(f.id, { kind: "finished", jobId: f.id, attempt: f.attempt });
  const startedBatches = out?.started_batches ?? [];
  // A batch whose row was locked when its first job was claimed (a reconciler
  // evaluating it, a cancel) still reads PENDING with a job running: start it now,
  // in a statement of its own that holds no job row (so it may wait for the batch
  // row without the deadlock SKIP LOCKED avoids above).
  const skipped = out?.skipped_batches ?? [];
  if (skipped.length > 0) {
    const rows = await rawOf(db).$queryRaw<{ id: string }[]>`
      UPDATE batches b SET status = 'RUNNING',
        started_at = COALESCE(b.started_at, (SELECT min(j.started_at) FROM simulation_jobs j WHERE j.batch_id = b.id))
      WHERE b.id = ANY(${skipped}::text[]) AND b.status = 'PENDING'
      RETURNING b.id`;
    startedBatches.push(...rows.map((r) => r.id));
  }
  const missing = ids.filter((id) => !results.has(id));
  if (missing.length > 0) {
    const current = await rawOf(db).$queryRaw<
      { id: string; status: string; attempts: number; cancel_requested: boolean; request_id: string | null; outcome: boolean }[]
    >`
      SELECT id, status::text AS status, attempts, cancel_requested, request_id,
        EXISTS (SELECT 1 FROM job_attempt_outcomes o WHERE o.job_id = j.id AND o.attempt = j.attempts) AS outcome
      FROM simulation_jobs j WHERE id = ANY(${missing}::text[])`;
    const byId = new Map(current.map((c) => [c.id, c]));
    for (const id of missing) {
      const c = byId.get(id);
      results.set(
        id,
        c?.status === "RUNNING" && c.outcome
          ? { kind: "finished", jobId: id, attempt: c.attempts }
          : c?.status === "RUNNING" && c.cancel_requested
            ? { kind: "cancel-requested", jobId: id, attempt: c.attempts, requestId: c.request_id }
            : { kind: "not-runnable", status: c?.status ?? null },
      );
    }
  }
  return { results, startedBatches };
}

interface ExhaustedRow {
  id: string;
  attempt: number;
  cost: number | string;
  tokens: number | string;
  error: string;
  request_id: string | null;
}

/** Claims one job (see claimJobs). */
export async function claimJob(db: Db, jobId: string, maxAttempts = DEFAULT_MAX_JOB_ATTEMPTS): Promise<ClaimResult> {
  return (await claimJobs(db, [jobId], maxAttempts)).results.get(jobId)!;
}

/**
 * Claims of one worker process made within the same tick, or while its previous
 * claim statement runs, share one statement (see TickBatcher).
 * A job asked for twice in one window is claimed once per ask, in turn, as if
 * the asks had come one after the other.
 */
export class ClaimBatcher {
  private readonly batcher: TickBatcher<string, ClaimResult>;

  constructor(
    db: Db,
    /** Called with the batches a claim statement moved to RUNNING (and the request id of a job that started each). */
    onBatchesStarted: (batches: { batchId: string; requestId: string | null }[]) => void = () => undefined,
    maxAttempts = DEFAULT_MAX_JOB_ATTEMPTS,
    /** Called with the jobs a claim statement started (id and batch): live progress hears of them. */
    onClaimed: (jobs: [string, string | null][]) => void = () => undefined,
  ) {
    this.batcher = new TickBatcher(async (ids) => {
      const out: ClaimResult[] = new Array(ids.length);
      let todo = ids.map((id, i) => ({ id, i }));
      while (todo.length > 0) {
        const seen = new Set<string>();
        const now = todo.filter((t) => !seen.has(t.id) && seen.add(t.id));
        todo = todo.filter((t) => !now.includes(t));
        const { results, startedBatches } = await claimJobs(
          db,
          now.map((t) => t.id),
          maxAttempts,
        );
        if (startedBatches.length > 0) {
          const requestIds = new Map<string, string | null>();
          for (const r of results.values()) if (r.kind === "claimed" && r.job.batchId) requestIds.set(r.job.batchId, r.job.requestId);
          onBatchesStarted(startedBatches.map((batchId) => ({ batchId, requestId: requestIds.get(batchId) ?? null })));
        }
        const claimed: [string, string | null][] = [];
        for (const r of results.values()) if (r.kind === "claimed") claimed.push([r.job.id, r.job.batchId]);
        if (claimed.length > 0) onClaimed(claimed);
        for (const t of now) out[t.i] = results.get(t.id)!;
      }
      return out;
    });
  }

  claim(jobId: string): Promise<ClaimResult> {
    return this.batcher.submit(jobId);
  }
}

export interface ResultToStore {
  jobId: string;
  attempt: number;
  result: unknown;
  exports: { format: string; contentType: string; content: Buffer }[];
  /** The attempt's spending, charged with the result. */
  costMicros?: number;
  tokens?: number;
  /** When the attempt ended (the completed event carries the same time). */
  at?: Date;
}

/** A result ready to write: serialized once, exports one per format. */
interface PreparedResult {
  jobId: string;
  attempt: number;
  costMicros: number;
  tokens: number;
  at: Date;
  json: string;
  exports: { format: string; contentType: string; content: Buffer }[];
  bytes: number;
}

function prepare(it: ResultToStore): PreparedResult {
  const json = JSON.stringify(it.result);
  const exports = [...new Map(it.exports.map((e) => [e.format, e])).values()];
  return {
    jobId: it.jobId,
    attempt: it.attempt,
    costMicros: it.costMicros ?? 0,
    tokens: it.tokens ?? 0,
    at: it.at ?? new Date(),
    json,
    exports,
    bytes: json.length + exports.reduce((n, e) => n + e.content.length, 0),
  };
}

/** A completed attempt its worker ended in Postgres (see writeResults). */
export interface CompletedEnd {
  jobId: string;
  attempt: number;
  batchId: string | null;
  templateId: string | null;
  /** From the job's first start to this attempt's end. */
  durationSeconds: number;
}

/**
 * Ends completed attempts (distinct job ids) in one statement: the job goes
 * RUNNING -> COMPLETED with its spending, the attempt is charged (a ledger row
 * unique on job and attempt), the result is upserted on job_id and its exports
 * on (job_id, format) (a job's formats are the same in every attempt). Guarded:
 * only a job still RUNNING in that same attempt, with no outcome recorded for
 * it, is ended (its row is locked, so a concurrent re-claim waits for the end
 * or, having won, makes it refuse), and a result never replaces a later
 * attempt's. The counters' triggers count the end and the charge in the same
 * statement, as they do for the reconciler's ends. A job whose stop was requested
 * (a cancel, a fail-fast or budget stop) while its last step ran is not ended
 * here: its run reached the step boundary where it is interrupted, so it ends
 * CANCELLED like any interrupted run (the caller records that outcome).
 * Returns the attempts ended and, apart, those whose stop was requested.
 */
async function writeResults(db: Db, items: PreparedResult[]): Promise<{ ended: CompletedEnd[]; stopRequested: string[] }> {
  const exports = items.flatMap((it) => it.exports.map((e) => ({ ...e, jobId: it.jobId, attempt: it.attempt })));
  // One statement text whatever the number of rows (arrays, not VALUES lists), so that it is
  // prepared once per connection and planned once (planning was a tenth of its time).
  const rows = await inPreparedTransaction(db, (tx) =>
    tx.$queryRaw<{ id: string; attempt: number; batch_id: string | null; template_id: string | null; duration_s: number | null; stop: boolean }[]>(
      prepared(
        "end_completed_runs",
        Prisma.sql`
    WITH input AS (
      SELECT v.job_id, v.attempt, v.result, v.cost, v.tokens, v.at, v.period
      FROM unnest(${items.map((it) => it.jobId)}::text[], ${items.map((it) => it.attempt)}::int[], ${items.map((it) => it.json)}::jsonb[],
        ${items.map((it) => String(it.costMicros))}::bigint[], ${items.map((it) => String(it.tokens))}::bigint[],
        ${items.map((it) => it.at.toISOString())}::timestamp[], ${items.map((it) => periodOf(it.at))}::text[])
        AS v(job_id, attempt, result, cost, tokens, at, period)
    ), live AS (
      SELECT v.job_id, v.attempt, v.result, v.cost, v.tokens, v.at, v.period
      FROM input v JOIN simulation_jobs j ON j.id = v.job_id AND j.status = 'RUNNING' AND j.attempts = v.attempt AND NOT j.cancel_requested
      WHERE NOT EXISTS (SELECT 1 FROM job_attempt_outcomes o WHERE o.job_id = v.job_id AND o.attempt = v.attempt)
      FOR UPDATE OF j
    ), stopping AS (
      SELECT v.job_id, v.attempt
      FROM input v JOIN simulation_jobs j ON j.id = v.job_id AND j.status = 'RUNNING' AND j.attempts = v.attempt AND j.cancel_requested
      WHERE NOT EXISTS (SELECT 1 FROM job_attempt_outcomes o WHERE o.job_id = v.job_id AND o.attempt = v.attempt)
    ), ended AS (
      UPDATE simulation_jobs j SET status = 'COMPLETED', completed_at = l.at,
        ${reportedSpending("l")},
        progress_percent = 100, current_step = 'completed'
      FROM live l WHERE j.id = l.job_id
      RETURNING j.id, j.owner_id, j.batch_id, l.attempt, l.result, l.period, ${attemptCharge}, j.template_id, EXTRACT(EPOCH FROM (l.at - j.started_at))::float8 AS duration_s
    ), charged AS (
      ${chargeEnded}
    ), res AS (
      INSERT INTO simulation_results AS r (job_id, attempt, result)
      SELECT id, attempt, result FROM ended
      ON CONFLICT (job_id) DO UPDATE SET attempt = EXCLUDED.attempt, result = EXCLUDED.result
      WHERE r.attempt <= EXCLUDED.attempt
    ), ex AS (
      INSERT INTO simulation_exports (job_id, format, content_type, content)
      SELECT e.job_id, e.format, e.content_type, e.content
      FROM unnest(${exports.map((e) => e.jobId)}::text[], ${exports.map((e) => e.attempt)}::int[], ${exports.map((e) => e.format)}::text[],
        ${exports.map((e) => e.contentType)}::text[], ${exports.map((e) => e.content)}::bytea[]) AS e(job_id, attempt, format, content_type, content)
      JOIN ended ON ended.id = e.job_id AND ended.attempt = e.attempt
      ON CONFLICT (job_id, format) DO UPDATE SET content_type = EXCLUDED.content_type, content = EXCLUDED.content, created_at = now()
    )
    SELECT id, attempt, batch_id, template_id, duration_s, false AS stop FROM ended
    UNION ALL SELECT job_id, attempt, NULL, NULL, NULL, true FROM stopping`,
      ),
    ),
  );
  return {
    ended: rows
      .filter((r) => !r.stop)
      .map((r) => ({ jobId: r.id, attempt: r.attempt, batchId: r.batch_id, templateId: r.template_id, durationSeconds: Number(r.duration_s ?? 0) })),
    stopRequested: rows.filter((r) => r.stop).map((r) => `${r.id}:${r.attempt}`),
  };
}

/** Largest statement the result writer builds from several results (one result alone may exceed it). */
const MAX_WRITE_BYTES = 8 * 1024 * 1024;

/**
 * Ends completed runs with what they produced, before their completion events
 * are published: as few statements as possible (one unless the results are
 * large or one job appears twice). Returns the attempts ended, by
 * `${jobId}:${attempt}`, and apart those whose stop was requested (they are to
 * end CANCELLED, see writeResults); an attempt in neither was refused as stale
 * (the job was re-claimed, or has ended) and must not report completion.
 */
export async function storeResults(db: Db, items: ResultToStore[]): Promise<{ ended: Map<string, CompletedEnd>; stopRequested: Set<string> }> {
  const stored = new Map<string, CompletedEnd>();
  const stopRequested = new Set<string>();
  let chunk: PreparedResult[] = [];
  let bytes = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    const written = await writeResults(db, chunk);
    for (const e of written.ended) stored.set(`${e.jobId}:${e.attempt}`, e);
    for (const k of written.stopRequested) stopRequested.add(k);
    chunk = [];
    bytes = 0;
  };
  for (const it of items.map(prepare)) {
    if (chunk.length > 0 && (bytes + it.bytes > MAX_WRITE_BYTES || chunk.some((c) => c.jobId === it.jobId))) await flush();
    chunk.push(it);
    bytes += it.bytes;
  }
  await flush();
  return { ended: stored, stopRequested };
}

/** Ends one completed run with its result (see storeResults); false when it was not ended (stale, or its stop requested). */
export async function storeResult(
  db: Db,
  jobId: string,
  attempt: number,
  result: unknown,
  exports: { format: string; contentType: string; content: Buffer }[],
  spending: { costMicros: number; tokens: number } = { costMicros: 0, tokens: 0 },
): Promise<boolean> {
  return (await storeResults(db, [{ jobId, attempt, result, exports, ...spending }])).ended.has(`${jobId}:${attempt}`);
}

/**
 * What became of a completed run's end: `ended` with its result, `stop-requested` (a
 * stop came while its last step ran: it is to end CANCELLED), or `stale`.
 */
export type EndVerdict = "ended" | "stop-requested" | "stale";

/**
 * Runs completed within the same tick (or while the previous write runs) are
 * ended together (see storeResults); `store` resolves with each one's EndVerdict.
 * `onEnded` hears of each statement's ends after it committed (the worker counts
 * them in the job metrics).
 */
export class ResultWriter {
  private readonly batcher: TickBatcher<ResultToStore, EndVerdict>;

  constructor(db: Db, onEnded: (ends: CompletedEnd[]) => void = () => undefined) {
    this.batcher = new TickBatcher(async (items) => {
      const { ended, stopRequested } = await storeResults(db, items);
      if (ended.size > 0) onEnded([...ended.values()]);
      return items.map((it) => {
        const key = `${it.jobId}:${it.attempt}`;
        return ended.has(key) ? "ended" : stopRequested.has(key) ? "stop-requested" : "stale";
      });
    }, 100);
  }

  store(item: ResultToStore): Promise<EndVerdict> {
    return this.batcher.submit(item);
  }
}

export interface OutcomeToRecord {
  jobId: string;
  attempt: number;
  status: "FAILED" | "CANCELLED";
  costMicros: number;
  tokens: number;
  errorMessage: string | null;
  at: Date;
}

/**
 * Records the outcomes of attempts that ended without a result (failed,
 * interrupted), one statement for all: only while the job is RUNNING at that
 * attempt (the job row is share-locked against a concurrent re-claim) and only
 * once per attempt. Returns the `${jobId}:${attempt}` keys recorded; a worker
 * publishes an attempt's terminal event only once its outcome is recorded.
 */
export async function recordOutcomes(db: Db, items: OutcomeToRecord[]): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  const rows = items.map(
    (o) =>
      Prisma.sql`(${o.jobId}::text, ${o.attempt}::int, ${o.status}::text, ${BigInt(o.costMicros)}::bigint, ${BigInt(o.tokens)}::bigint, ${o.errorMessage}::text, ${o.at}::timestamp)`,
  );
  const written = await rawOf(db).$queryRaw<{ job_id: string; attempt: number }[]>`
    WITH live AS (
      SELECT v.* FROM (VALUES ${Prisma.join(rows)}) AS v(job_id, attempt, status, cost, tokens, error, at)
      JOIN simulation_jobs j ON j.id = v.job_id AND j.status = 'RUNNING' AND j.attempts = v.attempt
      FOR SHARE OF j
    )
    INSERT INTO job_attempt_outcomes (job_id, attempt, status, cost_micros, tokens, error_message, ended_at)
    SELECT DISTINCT ON (job_id, attempt) job_id, attempt, status, cost, tokens, error, at FROM live
    ON CONFLICT (job_id, attempt) DO NOTHING
    RETURNING job_id, attempt`;
  return new Set(written.map((w) => `${w.job_id}:${w.attempt}`));
}

/** Outcomes recorded within the same tick (or while the previous write runs) share one statement (see recordOutcomes). */
export class OutcomeWriter {
  private readonly batcher: TickBatcher<OutcomeToRecord, boolean>;

  constructor(db: Db) {
    this.batcher = new TickBatcher(async (items) => {
      const done = await recordOutcomes(db, items);
      return items.map((it) => done.has(`${it.jobId}:${it.attempt}`));
    }, 200);
  }

  record(item: OutcomeToRecord): Promise<boolean> {
    return this.batcher.submit(item);
  }
}
