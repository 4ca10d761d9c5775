// Structured JSON-lines logger. Redaction happens here, once, for every line: secrets never
// reach a log whatever a caller passes in.
import { TOKEN_SCAN_REGEX } from "../domain/token.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_LEVELS = Object.keys(LEVEL_RANK) as LogLevel[];

const SECRET_KEYS =
  /^(authorization|proxy-authorization|cookie|set-cookie|token|secret|password|hmac.*|.*_secret|x-api-key)$/i;
const TOKEN_ANYWHERE = new RegExp(TOKEN_SCAN_REGEX.source, "g");
const BEARER_ANYWHERE = /\bBearer\s+\S+/gi;

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Readonly<Record<string, unknown>>): void;
  /** One audit line (SPEC §6), always written whatever the log level. */
  audit(fields: Readonly<Record<string, unknown>>): void;
}

// Both patterns need one of these; a string with neither is returned without two replace passes.
const MAY_HOLD_SECRET = /tks_|bearer/i;

export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") {
    if (!MAY_HOLD_SECRET.test(value)) return value;
    return value
      .replace(TOKEN_ANYWHERE, "[REDACTED]")
      .replace(BEARER_ANYWHERE, "Bearer [REDACTED]");
  }
  if (value instanceof Error) return redactValue(value.message, depth);
  if (value === null || typeof value !== "object" || depth > 4) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.test(k) ? "[REDACTED]" : redactValue(v, depth + 1);
  }
  return out;
}

/**
 * Lines written within one turn of the event loop leave in one write, after it: a Check never
 * waits for a write(2) of its own audit line (stderr to a file or pipe is synchronous in Node).
 * Whatever is still pending when the process exits is written then.
 */
function batchedStderr(): (line: string) => void {
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    process.stderr.write(text);
  };
  process.once("exit", flush);
  return (line) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(line);
  };
}

let stderrWriter: ((line: string) => void) | undefined;

export function createLogger(opts: {
  level: LogLevel;
  write?: (line: string) => void;
  clock?: () => number;
}): Logger {
  const write = opts.write ?? (stderrWriter ??= batchedStderr());
  const clock = opts.clock ?? Date.now;
  const min = LEVEL_RANK[opts.level];
  const emit = (record: Record<string, unknown>) => {
    write(JSON.stringify(redactValue({ time: new Date(clock()).toISOString(), ...record })) + "\n");
  };
  return {
    log(level, msg, fields) {
      if (LEVEL_RANK[level] >= min) emit({ level, msg, ...fields });
    },
    audit(fields) {
      emit({ level: "info", msg: "audit", audit: true, ...fields });
    },
  };
}
