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
    transports: [new winston.transports.Console()],
  });
}
