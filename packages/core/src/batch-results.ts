import type { DbOrTx } from "@simbatch/db";
import { exportFormatsOf } from "./results.ts";

/** Rows per page at most. */
export const RESULT_PAGE_ROWS = 50;
/**
 * Result bytes per page: a page holds rows while the results before each row
 * stay under this (always at least one row; a stored result is at most 1 MiB),
 * so what one request holds does not grow with the batch's total result size.
 */
export const RESULT_PAGE_BYTES = 512 * 1024;

/** A job of the batch with, when it completed, its stored result as JSON text and its export formats. */
export interface BatchResultRow {
  batch_index: number;
  id: string;
  status: string;
  template_id: string | null;
  temporal_mode: string;
  cost_micros: bigint;
  tokens_used: bigint;
  error_message: string | null;
  result_text: string | null;
  formats: string[];
}

export interface BatchResultsOptions {
  pageRows?: number;
  pageBytes?: number;
}

/**
 * One page, one statement: the next jobs of the batch after `after` (keyset on
 * batch_index, index simulation_jobs(batch_id, batch_index)), with the stored
 * result of completed ones as JSON text and the export formats they asked for
 * (batchResultRows lists them as the result route does, exportFormatsOf). The inner
 * query takes at most `rows` jobs; the outer keeps those whose preceding results
 * fit in `bytes`. The result is rendered once per row (OFFSET 0 keeps the lateral
 * subquery from being flattened into two renderings).
 */
async function resultPage(db: DbOrTx, batchId: string, after: number, rows: number, bytes: number): Promise<BatchResultRow[]> {
  return db.$queryRaw<BatchResultRow[]>`
    SELECT q.batch_index, q.id, q.status, q.template_id, q.temporal_mode, q.cost_micros, q.tokens_used, q.error_message, q.result_text, q.formats
    FROM (
      SELECT p.*, sum(p.size) OVER (ORDER BY p.batch_index) - p.size AS before
      FROM (
        SELECT j.batch_index, j.id, j.status::text AS status, j.template_id, j.temporal_mode::text AS temporal_mode, j.cost_micros,
          j.tokens_used, j.error_message, t.result_text, COALESCE(octet_length(t.result_text), 0)::bigint AS size,
          CASE WHEN t.result_text IS NULL THEN ARRAY[]::text[]
            ELSE j.export_formats END AS formats
        FROM simulation_jobs j
        LEFT JOIN LATERAL (
          SELECT r.result::text AS result_text FROM simulation_results r WHERE r.job_id = j.id AND j.status = 'COMPLETED' OFFSET 0
        ) t ON true
        WHERE j.batch_id = ${batchId} AND j.batch_index > ${after}
        ORDER BY j.batch_index
        LIMIT ${rows}
      ) p
    ) q
    WHERE q.before < ${bytes}
    ORDER BY q.batch_index`;
}

/**
 * The batch's jobs and results in job_ids order (= batch_index order), fetched
 * page by page and handed out one at a time: a caller that renders and writes
 * each row and waits for the client before asking for the next holds at most one
 * page of stored results and one rendered line. The first page is read by the
 * first `next()`, so a caller can fail cleanly (503, ...) before it sends anything.
 */
export async function* batchResultRows(db: DbOrTx, batchId: string, opts: BatchResultsOptions = {}): AsyncGenerator<BatchResultRow> {
  const rows = opts.pageRows ?? RESULT_PAGE_ROWS;
  const bytes = opts.pageBytes ?? RESULT_PAGE_BYTES;
  let after = -1;
  for (;;) {
    const page: (BatchResultRow | undefined)[] = await resultPage(db, batchId, after, rows, bytes);
    if (page.length === 0) return;
    after = page[page.length - 1]!.batch_index;
    for (let i = 0; i < page.length; i++) {
      const row = page[i]!;
      page[i] = undefined; // the page lets go of the row's text once handed out
      yield { ...row, formats: exportFormatsOf(row.formats) };
    }
  }
}
