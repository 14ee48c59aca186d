import { Argument, Option, type Command } from "commander";
import type { Context } from "./context.ts";
import { positiveInt, type Run } from "./batch-commands.ts";
import { jobDetails, resultDetails, templatesText, usageHistoryText, usageText } from "./format.ts";

export function jobCommands(job: Command, run: Run): void {
  run(job.command("get").description("show a job").argument("<id>"), async (ctx, id: string) => {
    const j = await ctx.client.simulations.get(id);
    ctx.print(j, () => jobDetails(j));
  });

  run(
    job.command("cancel").description("cancel a pending or running job").argument("<id>").option("--reason <text>", "why (kept on the job)"),
    async (ctx, id: string, opts: { reason?: string }) => {
      const j = await ctx.client.simulations.cancel(id, { reason: opts.reason });
      ctx.print(j, () => jobDetails(j));
    },
  );

  run(job.command("result").description("a completed job's result").argument("<id>"), async (ctx, id: string) => {
    const r = await ctx.client.simulations.result(id);
    ctx.print(r, () => resultDetails(r));
  });

  run(
    job
      .command("export")
      .description("download one of a job's exports")
      .argument("<id>")
      .addArgument(new Argument("<format>", "export format").choices(["json", "markdown", "pdf"]))
      .option("-o, --output <file>", "write to this file instead of stdout"),
    async (ctx: Context, id: string, format: "json" | "markdown" | "pdf", opts: { output?: string }) => {
      await ctx.save(await ctx.client.simulations.export(id, format), opts.output);
    },
  );
}

export function accountCommands(program: Command, run: Run): void {
  run(
    program
      .command("usage")
      .description("your usage and quota in the current billing period")
      .option("--history <n>", "also the last N past periods that had usage (1..24)", positiveInt),
    async (ctx, opts: { history?: number }) => {
      if (opts.history === undefined) {
        const u = await ctx.client.usage.get();
        return ctx.print(u, () => usageText(u));
      }
      const h = await ctx.client.usage.history({ periods: opts.history });
      ctx.print(h, () => usageHistoryText(h));
    },
  );

  run(
    program.command("templates").description("the template catalog").addOption(new Option("--category <name>", "only this category")),
    async (ctx, opts: { category?: string }) => {
      const t = await ctx.client.templates.list({ category: opts.category });
      ctx.print(t, () => templatesText(t));
    },
  );
}
