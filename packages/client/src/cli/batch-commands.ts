import { InvalidArgumentError, Option, type Command } from "commander";
import type { CreateBatchRequest, Batch } from "../types.ts";
import { Exit, readJsonFile, type Context } from "./context.ts";
import { batchDetails, batchLine, batchListText, dryRunText, jobRows } from "./format.ts";
import { progressView, silentView } from "./progress.ts";

/** Registers a command's action with the shared context and error handling (program.ts). */
export type Run = (cmd: Command, fn: (ctx: Context, ...args: any[]) => Promise<void>) => Command;

const BATCH_STATUSES = ["pending", "running", "completed", "partial", "failed", "cancelled"];

/** Exit code of a wait: 0 when every job completed, 1 for PARTIAL, FAILED or CANCELLED. */
const exitFor = (b: Batch): number => (b.status === "COMPLETED" ? 0 : 1);

/**
 * Waits for the batch to end, showing progress: a bar on a terminal, else one line
 * per change. Ends the run with the batch's exit code.
 */
async function waitAndReport(ctx: Context, batchId: string): Promise<never> {
  // With --json stdout holds the final batch only: progress goes to stderr, and only for a person at a terminal.
  const view = ctx.json ? (ctx.io.stderr.isTTY ? progressView(ctx.io.stderr) : silentView) : progressView(ctx.io.stdout);
  let final: Batch;
  try {
    final = await ctx.client.waitForBatch(batchId, { onProgress: (b) => view.update(b), signal: ctx.io.signal });
    view.update(final);
  } finally {
    view.stop();
  }
  // Plain progress already ended on the final state's line; a bar gets a closing line under it.
  if (ctx.json) ctx.print(final, () => "");
  else if (view.live) ctx.io.stdout.write(`${batchLine(final)}\n`);
  throw new Exit(exitFor(final));
}

export function batchCommands(batch: Command, run: Run): void {
  run(
    batch
      .command("submit")
      .description("submit a batch from a JSON file (- for stdin); prints the batch id")
      .argument("<file>", "the batch body: {simulations: [...], parallel_jobs, ...}")
      .option("--wait", "follow the batch to its end (exit 0 when COMPLETED, 1 when PARTIAL, FAILED or CANCELLED)")
      .option("--idempotency-key <key>", "Idempotency-Key header (default: a new random key)")
      .addOption(new Option("--dry-run", "run the admission checks only; nothing is written").conflicts("wait")),
    async (ctx, file: string, opts: { wait?: boolean; idempotencyKey?: string; dryRun?: boolean }) => {
      const body = (await readJsonFile(ctx.io, file)) as CreateBatchRequest;
      if (opts.dryRun) {
        const result = await ctx.client.batches.dryRun(body, { signal: ctx.io.signal });
        return ctx.print(result, () => dryRunText(result));
      }
      const created = await ctx.client.batches.create(body, { idempotencyKey: opts.idempotencyKey, signal: ctx.io.signal });
      if (!opts.wait) return ctx.print(created, () => created.batch_id);
      if (!ctx.json) ctx.io.stdout.write(`${created.batch_id}\n`);
      await waitAndReport(ctx, created.batch_id);
    },
  );

  run(batch.command("get").description("show a batch").argument("<id>"), async (ctx, id: string) => {
    const b = await ctx.client.batches.get(id);
    ctx.print(b, () => batchDetails(b));
  });

  run(batch.command("jobs").description("a batch's jobs, in request order").argument("<id>"), async (ctx, id: string) => {
    const r = await ctx.client.batches.jobs(id);
    ctx.print(r, () => `${batchLine(r.batch)}\n${jobRows(r.jobs)}`);
  });

  run(
    batch
      .command("cancel")
      .description("cancel a batch")
      .argument("<id>")
      .option("--reason <text>", "why (kept on the batch)")
      .option("--no-cancel-running", "let running jobs finish (default: interrupt them)"),
    async (ctx, id: string, opts: { reason?: string; cancelRunning: boolean }) => {
      const b = await ctx.client.batches.cancel(id, { reason: opts.reason, cancel_running: opts.cancelRunning });
      ctx.print(b, () => batchLine(b));
    },
  );

  for (const action of ["pause", "resume"] as const) {
    const what = action === "pause" ? "stop starting the batch's jobs (running ones finish)" : "start the batch's jobs again";
    run(batch.command(action).description(what).argument("<id>"), async (ctx, id: string) => {
      const b = await ctx.client.batches[action](id);
      ctx.print(b, () => batchLine(b));
    });
  }

  run(
    batch.command("watch").description("follow a batch to its end (exit codes as submit --wait)").argument("<id>"),
    async (ctx, id: string) => await waitAndReport(ctx, id),
  );

  run(
    batch
      .command("list")
      .description("your batches, newest first")
      .addOption(new Option("--status <status>", "only batches in this status").choices(BATCH_STATUSES))
      .option("--page <n>", "page number (from 1)", positiveInt)
      .option("--page-size <n>", "batches per page (1..100)", positiveInt),
    async (ctx, opts: { status?: string; page?: number; pageSize?: number }) => {
      const list = await ctx.client.batches.list({ status: opts.status?.toUpperCase() as Batch["status"], page: opts.page, page_size: opts.pageSize });
      ctx.print(list, () => batchListText(list));
    },
  );

  run(
    batch
      .command("results")
      .description("every job's result as NDJSON, one line per job in request order")
      .argument("<id>")
      .option("-o, --output <file>", "write to this file instead of stdout"),
    async (ctx, id: string, opts: { output?: string }) => {
      await ctx.save(await ctx.client.batches.resultsResponse(id), opts.output);
    },
  );

  run(
    batch
      .command("report")
      .description("statistics across the batch's runs")
      .argument("<id>")
      .addOption(new Option("--format <format>", "report format").choices(["json", "markdown", "csv"]).default("json")),
    async (ctx, id: string, opts: { format: "json" | "markdown" | "csv" }) => {
      if (opts.format === "json") {
        const report = await ctx.client.batches.report(id);
        ctx.io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const text = await ctx.client.batches.report(id, { format: opts.format });
        ctx.io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
      }
    },
  );
}

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError("must be a positive integer");
  return Number(value);
}
