import { writeSync } from "node:fs";
import { Writable } from "node:stream";
import winston from "winston";

export type Logger = winston.Logger;

/** Keys whose values never reach a log line, at any depth. */
const SECRET_KEYS = /^(authorization|x-api-key|api_key|apikey|token|admin_token|password|secret|openai_api_key|cookie)$/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.test(k) ? "[redacted]" : redact(v, depth + 1);
  return out;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (SECRET_KEYS.test(key)) info[key] = "[redacted]";
    else info[key] = redact(info[key]);
  }
  // API keys can end up inside free text (e.g. an echoed header); mask their body.
  if (typeof info.message === "string") info.message = info.message.replace(/tp_[0-9a-f]{8}[0-9a-f]{24}/g, (k) => `${k.slice(0, 11)}…`);
  return info;
});

/** One JSON object per line: time, level, service and message first, then the fields. */
const lineFormat = winston.format.printf((info) => {
  const { timestamp, level, service, message, ...fields } = info;
  return JSON.stringify({ timestamp, level, service, message, ...fields }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
});

/**
 * Lines written in one tick leave in one write: on a pipe or file every
 * stdout write is a synchronous system call, and at a few thousand lines a
 * second (one per job event) those calls cost more than the logging itself.
 * What is buffered is written synchronously when the process exits, so only a
 * kill -9 can lose lines, and only those of the last tick.
 */
class TickBatchedStdout extends Writable {
  private pending: string[] = [];
  private scheduled = false;

  constructor() {
    super({ decodeStrings: false });
    process.once("exit", () => this.flushSync());
  }

  override _write(chunk: string | Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.pending.push(String(chunk));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    done();
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    process.stdout.write(text);
  }

  private flushSync(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    try {
      writeSync(1, text);
    } catch {
      /* stdout gone */
    }
  }
}

let stdout: TickBatchedStdout | null = null;
const sharedStdout = () => (stdout ??= new TickBatchedStdout());

export interface LoggerOptions {
  /** Role name bound to every line (`api`, `worker`, `reconciler`). */
  service: string;
  /** Winston level; default `info`. */
  level?: string;
  /** Silence output (tests). */
  silent?: boolean;
}

/** JSON lines on stdout: message first, fields second, secrets redacted. */
export function createLogger(opts: LoggerOptions): Logger {
  return winston.createLogger({
    level: opts.level ?? "info",
    silent: opts.silent ?? false,
    defaultMeta: { service: opts.service },
    format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.timestamp(), redactFormat(), lineFormat),
    transports: [new winston.transports.Stream({ stream: sharedStdout() })],
  });
}
