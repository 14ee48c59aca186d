import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import { Simbatch } from "../client.ts";
import { DEFAULT_BASE_URL } from "../http.ts";
import type { Out } from "./progress.ts";

/** Where the CLI reads and writes, and its environment: process's own in main.ts, fakes in tests. */
export interface CliIo {
  stdout: Out & NodeJS.WritableStream;
  stderr: Out & NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  /** Aborted on Ctrl-C: a wait stops and the CLI exits 130. */
  signal?: AbortSignal;
}

/** Ends the run with this exit code (after its message, if any, went to stderr). */
export class Exit extends Error {
  constructor(
    readonly code: number,
    message = "",
  ) {
    super(message);
  }
}

/** A usage error: exit code 2. */
export const usage = (message: string): Exit => new Exit(2, message);

export interface GlobalOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

/** What every command needs: a client, the output mode and the streams. */
export class Context {
  readonly json: boolean;
  readonly client: Simbatch;

  constructor(
    readonly io: CliIo,
    opts: GlobalOptions,
  ) {
    const baseUrl = opts.url ?? io.env.SIMBATCH_URL ?? DEFAULT_BASE_URL;
    if (!URL.canParse(baseUrl)) throw usage(`not a URL: ${baseUrl} (from --url or SIMBATCH_URL)`);
    const apiKey = opts.apiKey ?? io.env.SIMBATCH_API_KEY;
    if (!apiKey) throw usage("an API key is needed: set SIMBATCH_API_KEY or pass --api-key");
    this.json = opts.json === true;
    this.client = new Simbatch({ baseUrl, apiKey });
  }

  /** The API's JSON with `--json`, else the human text. */
  print(value: unknown, human: () => string): void {
    this.io.stdout.write(this.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
  }

  /** Copies a response body to a file, or to stdout (respecting its backpressure). */
  async save(res: Response, file: string | undefined): Promise<void> {
    const out = file ? createWriteStream(file) : this.io.stdout;
    if (res.body) {
      for await (const chunk of res.body) {
        if (!out.write(chunk)) await once(out, "drain");
      }
    }
    if (file) {
      out.end();
      await finished(out);
    }
  }
}

/** A JSON document from a file, or from stdin for `-`. */
export async function readJsonFile(io: CliIo, file: string): Promise<unknown> {
  let text: string;
  try {
    text = file === "-" ? await readAll(io.stdin) : await readFile(file, "utf8");
  } catch (err) {
    throw usage(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usage(`${file === "-" ? "stdin" : file} is not JSON: ${(err as Error).message}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
  return text;
}
