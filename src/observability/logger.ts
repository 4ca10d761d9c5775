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
  const time = isoTimeOf(clock);
  const emit = (record: Record<string, unknown>) => {
    write(JSON.stringify(redactValue({ time: time(), ...record })) + "\n");
  };
  return {
    log(level, msg, fields) {
      if (LEVEL_RANK[level] >= min) emit({ level, msg, ...fields });
    },
    audit(fields) {
      // Every allowed Check writes one (--audit-allow-sample 1.0). A record of plain values with
      // nothing to redact (the usual case) is stringified as it stands: one JSON.stringify, no
      // copies; anything else takes the general path. Both give the same text.
      const members = needsNoRedaction(fields) ? JSON.stringify(fields) : undefined;
      if (members === undefined) {
        emit({ level: "info", msg: "audit", audit: true, ...fields });
      } else {
        const rest = members === "{}" ? "}" : `,${members.slice(1)}`;
        write(`{"time":"${time()}",${AUDIT_HEAD}${rest}\n`);
      }
    },
  };
}

const AUDIT_HEAD = '"level":"info","msg":"audit","audit":true';
const RESERVED_AUDIT_KEYS = ["time", "level", "msg", "audit"];

/** Many lines share a millisecond under load: its ISO text is made once. */
function isoTimeOf(clock: () => number): () => string {
  let lastMs = NaN;
  let lastText = "";
  return () => {
    const ms = clock();
    if (ms !== lastMs) {
      lastMs = ms;
      lastText = new Date(ms).toISOString();
    }
    return lastText;
  };
}

const plainKeyMemo = new Map<string, boolean>();

/**
 * A key the audit fast path can write as it stands: not secret, not one of the line's own
 * members, and not an array index (an object puts those first, ahead of "time").
 */
function isPlainKey(key: string): boolean {
  let plain = plainKeyMemo.get(key);
  if (plain === undefined) {
    plain = !SECRET_KEYS.test(key) && !RESERVED_AUDIT_KEYS.includes(key) && !/^\d+$/.test(key);
    // Keys come from the code (a bounded set); the cap only guards against a caller's data.
    if (plainKeyMemo.size < 1024) plainKeyMemo.set(key, plain);
  }
  return plain;
}

/**
 * True when redactValue would return the record's members unchanged and they can follow the
 * line's own members as they are: only strings that cannot hold a secret, numbers, booleans,
 * null and undefined, under plain keys.
 */
export function needsNoRedaction(fields: Readonly<Record<string, unknown>>): boolean {
  for (const key in fields) {
    if (!Object.hasOwn(fields, key)) return false;
    const value = fields[key];
    if (typeof value === "string") {
      if (MAY_HOLD_SECRET.test(value)) return false;
    } else if (
      value !== undefined &&
      value !== null &&
      typeof value !== "number" &&
      typeof value !== "boolean"
    ) {
      return false;
    }
    if (!isPlainKey(key)) return false;
  }
  return true;
}
