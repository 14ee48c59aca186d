import { Command, CommanderError } from "commander";
import { SimbatchError } from "../errors.ts";
import { CLIENT_VERSION } from "../http.ts";
import { batchCommands, type Run } from "./batch-commands.ts";
import { Context, Exit, type CliIo, type GlobalOptions } from "./context.ts";
import { errorText } from "./format.ts";
import { accountCommands, jobCommands } from "./other-commands.ts";

/**
 * Runs the CLI on `argv` (the arguments after the program name) and returns its
 * exit code: 0 success, 1 a waited-on batch ended PARTIAL, FAILED or CANCELLED,
 * 2 a usage error or an HTTP error (code and message on stderr), 130 interrupted.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    return exitCode(err, io);
  }
}

function exitCode(err: unknown, io: CliIo): number {
  if (err instanceof Exit) {
    if (err.message) io.stderr.write(`error: ${err.message}\n`);
    return err.code;
  }
  // Commander has already printed its message; help and version are not errors.
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (io.signal?.aborted) {
    io.stderr.write("interrupted\n");
    return 130;
  }
  if (err instanceof SimbatchError) {
    io.stderr.write(`${errorText(err)}\n`);
    return 2;
  }
  io.stderr.write(`error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 2;
}

function buildProgram(io: CliIo): Command {
  const program = new Command("simbatch")
    .description("Submit simulation batches to simbatch and follow them")
    .version(CLIENT_VERSION)
    .option("--url <url>", "API root (default: SIMBATCH_URL, else http://127.0.0.1:8080)")
    .option("--api-key <key>", "API key (default: SIMBATCH_API_KEY)")
    .option("--json", "print the API's JSON and nothing else on stdout")
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");

  const run: Run = (cmd, fn) =>
    cmd.action(async (...args: unknown[]) => {
      const self = args[args.length - 1] as Command;
      await fn(new Context(io, self.optsWithGlobals<GlobalOptions>()), ...args.slice(0, -1));
    });

  // Every subcommand shares the program's output, exit and help-on-error settings.
  const group = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
      .exitOverride()
      .showHelpAfterError("(run with --help for usage)");
  batchCommands(group("batch", "submit, follow and control batches"), run);
  jobCommands(group("job", "single jobs (batch jobs included)"), run);
  accountCommands(program, run);
  return program;
}
