import { Prisma, type Db } from "@simbatch/db";

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
  cap: bigint | null;
  template_id: string | null;
  description: string | null;
  entity_count: number;
  timepoint_count: number;
  temporal_mode: string;
  config: Record<string, unknown>;
  generate_summaries: boolean;
  export_formats: string[];
  request_id: string | null;
  started_batches: string[] | null;
}

export type ClaimResult =
  | { kind: "claimed"; job: ClaimedJob }
  /** Cancel was requested while a crashed attempt held it: end it as cancelled. */
  | { kind: "cancel-requested"; jobId: string; attempt: number; requestId: string | null }
  | { kind: "not-runnable"; status: string | null };

export interface ClaimBatchResult {
  /** One result per distinct job id asked for. */
  results: Map<string, ClaimResult>;
  /** Batches this claim moved from PENDING to RUNNING (their first claimed job). */
  startedBatches: string[];
}

/**
 * Collects the calls made within one tick (a setImmediate window) and runs them
 * as one batch; every caller gets its own item's answer, or the batch's error.
 */
export class TickBatcher<I, O> {
  private pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 200,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += this.maxBatch) {
      const batch = all.slice(i, i + this.maxBatch);
      this.run(batch.map((b) => b.item)).then(
        (out) => batch.forEach((b, k) => b.resolve(out[k]!)),
        (err) => batch.forEach((b) => b.reject(err)),
      );
    }
  }
}

const toClaimedJob = (r: ClaimRow): ClaimedJob => ({
  id: r.id, ownerId: r.owner_id, batchId: r.batch_id, attempt: r.attempts,
  budgetCapMicros: r.cap === null ? null : Number(r.cap),
  templateId: r.template_id, description: r.description, entityCount: r.entity_count, timepointCount: r.timepoint_count,
  temporalMode: r.temporal_mode, config: r.config, generateSummaries: r.generate_summaries, exportFormats: r.export_formats,
  requestId: r.request_id,
});

/**
 * Takes released jobs for a run in one statement: PENDING (released) → RUNNING,
 * or a RUNNING job whose previous attempt's worker died (BullMQ redelivered it).
 * Each claim is a new attempt, and resets the attempt's spending. The same
 * statement moves the claimed jobs' batches from PENDING to RUNNING; a batch row
 * locked by someone else is skipped rather than waited for (the holder is
 * another claim that starts it, a cancel that ends it, or a reconciler that
 * re-derives it), so a claim never waits on a batch lock and cannot deadlock
 * with a cancel that locks the batch before its jobs.
 */
export async function claimJobs(db: Db, jobIds: string[]): Promise<ClaimBatchResult> {
  const ids = [...new Set(jobIds)];
  const results = new Map<string, ClaimResult>();
  if (ids.length === 0) return { results, startedBatches: [] };
  const rows = await db.$queryRaw<ClaimRow[]>`
    WITH claimed AS (
      UPDATE simulation_jobs j SET status = 'RUNNING', attempts = j.attempts + 1, started_at = COALESCE(j.started_at, now()),
        cost_micros = 0, tokens_used = 0, progress_percent = 0, current_step = 'starting'
      WHERE j.id = ANY(${ids}::text[]) AND NOT j.cancel_requested
        AND ((j.status = 'PENDING' AND j.released_at IS NOT NULL) OR j.status = 'RUNNING')
      RETURNING j.id, j.owner_id, j.batch_id, j.attempts, j.template_id, j.description, j.entity_count, j.timepoint_count,
        j.temporal_mode::text AS temporal_mode, j.config, j.generate_summaries, j.export_formats, j.request_id
    ), started AS (
      UPDATE batches b SET status = 'RUNNING', started_at = COALESCE(b.started_at, now())
      WHERE b.id IN (
        SELECT p.id FROM batches p
        WHERE p.id IN (SELECT c.batch_id FROM claimed c WHERE c.batch_id IS NOT NULL) AND p.status = 'PENDING'
        FOR UPDATE SKIP LOCKED)
        AND b.status = 'PENDING'
      RETURNING b.id
    )
    SELECT c.*, (SELECT b.budget_cap_micros FROM batches b WHERE b.id = c.batch_id) AS cap,
      (SELECT array_agg(s.id) FROM started s) AS started_batches
    FROM claimed c`;
  for (const r of rows) results.set(r.id, { kind: "claimed", job: toClaimedJob(r) });
  const startedBatches = rows[0]?.started_batches ?? [];
  const missing = ids.filter((id) => !results.has(id));
  if (missing.length > 0) {
    const current = await db.$queryRaw<{ id: string; status: string; attempts: number; cancel_requested: boolean; request_id: string | null }[]>`
      SELECT id, status::text AS status, attempts, cancel_requested, request_id FROM simulation_jobs WHERE id = ANY(${missing}::text[])`;
    const byId = new Map(current.map((c) => [c.id, c]));
    for (const id of missing) {
      const c = byId.get(id);
      results.set(
        id,
        c?.status === "RUNNING" && c.cancel_requested
          ? { kind: "cancel-requested", jobId: id, attempt: c.attempts, requestId: c.request_id }
          : { kind: "not-runnable", status: c?.status ?? null },
      );
    }
  }
  return { results, startedBatches };
}

/** Claims one job (see claimJobs). */
export async function claimJob(db: Db, jobId: string): Promise<ClaimResult> {
  return (await claimJobs(db, [jobId])).results.get(jobId)!;
}

/**
 * Claims of one worker process made within the same tick share one statement.
 * A job asked for twice in one window is claimed once per ask, in turn, as if
 * the asks had come one after the other.
 */
export class ClaimBatcher {
  private readonly batcher: TickBatcher<string, ClaimResult>;

  constructor(
    db: Db,
    /** Called with the batches a claim statement moved to RUNNING (and the request id of a job that started each). */
    onBatchesStarted: (batches: { batchId: string; requestId: string | null }[]) => void = () => undefined,
  ) {
    this.batcher = new TickBatcher(async (ids) => {
      const out: ClaimResult[] = new Array(ids.length);
      let todo = ids.map((id, i) => ({ id, i }));
      while (todo.length > 0) {
        const seen = new Set<string>();
        const now = todo.filter((t) => !seen.has(t.id) && seen.add(t.id));
        todo = todo.filter((t) => !now.includes(t));
        const { results, startedBatches } = await claimJobs(db, now.map((t) => t.id));
        if (startedBatches.length > 0) {
          const requestIds = new Map<string, string | null>();
          for (const r of results.values()) if (r.kind === "claimed" && r.job.batchId) requestIds.set(r.job.batchId, r.job.requestId);
          onBatchesStarted(startedBatches.map((batchId) => ({ batchId, requestId: requestIds.get(batchId) ?? null })));
        }
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
}

/** A result ready to write: serialized once, exports one per format. */
interface PreparedResult {
  jobId: string;
  attempt: number;
  json: string;
  exports: { format: string; contentType: string; content: Buffer }[];
  bytes: number;
}

function prepare(it: ResultToStore): PreparedResult {
  const json = JSON.stringify(it.result);
  const exports = [...new Map(it.exports.map((e) => [e.format, e])).values()];
  return { jobId: it.jobId, attempt: it.attempt, json, exports, bytes: json.length + exports.reduce((n, e) => n + e.content.length, 0) };
}

/** node-postgres sends a Buffer as bytea; a slice of a larger (pooled) buffer is copied so only its own bytes travel. */
const toBytes = (b: Buffer): Buffer => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : Buffer.from(b));

/**
 * Writes prepared results (distinct job ids) in one statement: the result
 * (upsert on job_id) and its exports (upsert on (job_id, format): a job's
 * formats are the same in every attempt). Guarded: a write happens only while
 * the job is still RUNNING in that same attempt (the job row is share-locked,
 * so a concurrent re-claim waits for the write or, having won, makes it
 * refuse), and never replaces a result of a later attempt.
 */
async function writeResults(db: Db, items: PreparedResult[]): Promise<Set<string>> {
  const rows = items.map((it) => Prisma.sql`(${it.jobId}::text, ${it.attempt}::int, ${it.json}::jsonb)`);
  const exportRows = items.flatMap((it) =>
    it.exports.map((e) => Prisma.sql`(${it.jobId}::text, ${it.attempt}::int, ${e.format}::text, ${e.contentType}::text, ${toBytes(e.content)}::bytea)`),
  );
  const writeExports = exportRows.length > 0
    ? Prisma.sql`, ex AS (
        INSERT INTO simulation_exports (job_id, format, content_type, content)
        SELECT e.job_id, e.format, e.content_type, e.content
        FROM (VALUES ${Prisma.join(exportRows)}) AS e(job_id, attempt, format, content_type, content)
        JOIN res ON res.job_id = e.job_id AND res.attempt = e.attempt
        ON CONFLICT (job_id, format) DO UPDATE SET content_type = EXCLUDED.content_type, content = EXCLUDED.content, created_at = now()
      )`
    : Prisma.empty;
  const written = await db.$queryRaw<{ job_id: string; attempt: number }[]>`
    WITH live AS (
      SELECT v.job_id, v.attempt, v.result
      FROM (VALUES ${Prisma.join(rows)}) AS v(job_id, attempt, result)
      JOIN simulation_jobs j ON j.id = v.job_id AND j.status = 'RUNNING' AND j.attempts = v.attempt
      FOR SHARE OF j
    ), res AS (
      INSERT INTO simulation_results AS r (job_id, attempt, result)
      SELECT job_id, attempt, result FROM live
      ON CONFLICT (job_id) DO UPDATE SET attempt = EXCLUDED.attempt, result = EXCLUDED.result
      WHERE r.attempt <= EXCLUDED.attempt
      RETURNING r.job_id, r.attempt
    )${writeExports}
    SELECT job_id, attempt FROM res`;
  return new Set(written.map((w) => `${w.job_id}:${w.attempt}`));
}

/** Largest statement the result writer builds from several results (one result alone may exceed it). */
const MAX_WRITE_BYTES = 8 * 1024 * 1024;

/**
 * Stores what completed runs produced, before their completion events are
 * published: as few statements as possible (one unless the results are large
 * or one job appears twice). Returns the `${jobId}:${attempt}` keys stored; an
 * attempt missing from it was refused as stale (the job was re-claimed, or has
 * ended) and must not report completion.
 */
export async function storeResults(db: Db, items: ResultToStore[]): Promise<Set<string>> {
  const stored = new Set<string>();
  let chunk: PreparedResult[] = [];
  let bytes = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    for (const k of await writeResults(db, chunk)) stored.add(k);
    chunk = [];
    bytes = 0;
  };
  for (const it of items.map(prepare)) {
    if (chunk.length > 0 && (bytes + it.bytes > MAX_WRITE_BYTES || chunk.some((c) => c.jobId === it.jobId))) await flush();
    chunk.push(it);
    bytes += it.bytes;
  }
  await flush();
  return stored;
}

/** Stores one run's result (see storeResults); false when the write was refused as stale. */
export async function storeResult(
  db: Db,
  jobId: string,
  attempt: number,
  result: unknown,
  exports: { format: string; contentType: string; content: Buffer }[],
): Promise<boolean> {
  return (await storeResults(db, [{ jobId, attempt, result, exports }])).has(`${jobId}:${attempt}`);
}

/**
 * The results of runs completed within the same tick are stored together (see
 * storeResults). `store` resolves true when the result was stored, false when
 * the attempt is stale.
 */
export class ResultWriter {
  private readonly batcher: TickBatcher<ResultToStore, boolean>;

  constructor(db: Db) {
    this.batcher = new TickBatcher(async (items) => {
      const stored = await storeResults(db, items);
      return items.map((it) => stored.has(`${it.jobId}:${it.attempt}`));
    }, 100);
  }

  store(item: ResultToStore): Promise<boolean> {
    return this.batcher.submit(item);
  }
}
