// `tokenscope token export` / `token import FILE`: back up and restore the token records (hashes
// and metadata, never a secret: none is stored). JSON lines: a header naming the environment and
// the HMAC key's fingerprint, then one record per line. Import checks every line before it
// writes anything, never overwrites a record that exists (a revocation is never undone), and
// refuses records made under another key or environment, which could never validate here.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { UsageError } from "../config.ts";
import { recordEndsAt, type TokenRecord } from "../domain/token-record.ts";
import { RecordDecodeError, toTokenRecord } from "../store/record-json.ts";
import { StoreConflictError } from "../store/token-store.ts";
import type { Ctx } from "./token-commands.ts";

const FORMAT = "tokenscope-export";
const VERSION = 1;

interface ExportHeader {
  readonly format: typeof FORMAT;
  readonly version: number;
  readonly environment: string;
  readonly keyFingerprint: string;
  readonly exportedAt: string;
  readonly records: number;
}

/** Names the key without revealing anything usable about it. */
export function keyFingerprint(key: Uint8Array): string {
  return createHmac("sha256", key)
    .update("tokenscope key fingerprint v1")
    .digest("hex")
    .slice(0, 16);
}

export async function exportCmd(ctx: Ctx): Promise<void> {
  if (ctx.args.length > 0)
    throw new UsageError("token export takes no arguments; it writes to stdout");
  const records = await ctx.store.list();
  const header: ExportHeader = {
    format: FORMAT,
    version: VERSION,
    environment: ctx.environment,
    keyFingerprint: keyFingerprint(ctx.hmacKey),
    exportedAt: new Date(ctx.clock()).toISOString(),
    records: records.length,
  };
  const lines = [JSON.stringify(header), ...records.map((r) => JSON.stringify(r))];
  process.stdout.write(lines.join("\n") + "\n");
  process.stderr.write(`exported ${records.length} token records (hashes only, no secrets)\n`);
}

function readInput(path: string): string {
  try {
    return readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    throw new UsageError(
      `token import: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

function parseLine(line: string, n: number): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new UsageError(`token import: line ${n} is not JSON; nothing was imported`);
  }
}

/** Every line checked before anything is written: a bad file imports nothing. */
export function parseExport(
  text: string,
  expect: { environment: string; fingerprint: string },
): TokenRecord[] {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const header = parseLine(lines[0] ?? "", 1) as Partial<ExportHeader> | null;
  if (header?.format !== FORMAT || header.version !== VERSION) {
    throw new UsageError(`token import: not a ${FORMAT} v${VERSION} file (line 1)`);
  }
  if (header.environment !== expect.environment) {
    throw new UsageError(
      `token import: the file holds tokens of environment "${String(header.environment)}", this installation is "${expect.environment}"`,
    );
  }
  if (header.keyFingerprint !== expect.fingerprint) {
    throw new UsageError(
      "token import: the file was exported under another HMAC key; its tokens could never validate here (use the same --hmac-key-file)",
    );
  }
  const seen = new Set<string>();
  const records = lines.slice(1).map((line, i) => {
    const n = i + 2;
    let record: TokenRecord;
    try {
      record = toTokenRecord(parseLine(line, n));
    } catch (err) {
      if (err instanceof RecordDecodeError)
        throw new UsageError(`token import: line ${n}: ${err.message}; nothing was imported`);
      throw err;
    }
    if (record.environment !== expect.environment) {
      throw new UsageError(
        `token import: line ${n}: record ${record.id} is of environment "${record.environment}"; nothing was imported`,
      );
    }
    if (seen.has(record.id))
      throw new UsageError(
        `token import: line ${n}: ${record.id} appears twice; nothing was imported`,
      );
    seen.add(record.id);
    return record;
  });
  if (header.records !== records.length) {
    throw new UsageError(
      `token import: the header announces ${String(header.records)} records, the file has ${records.length} (truncated?)`,
    );
  }
  return records;
}

export async function importCmd(ctx: Ctx): Promise<void> {
  const [path, ...extra] = ctx.args;
  if (path === undefined || extra.length > 0)
    throw new UsageError("usage: tokenscope token import FILE (or - for stdin)");
  const records = parseExport(readInput(path), {
    environment: ctx.environment,
    fingerprint: keyFingerprint(ctx.hmacKey),
  });
  let imported = 0;
  let existing = 0;
  let expired = 0;
  for (const record of records) {
    if (recordEndsAt(record) + ctx.retentionMs <= ctx.clock()) {
      expired++;
      continue;
    }
    try {
      await ctx.store.create(record);
      imported++;
    } catch (err) {
      // The store's record wins: it may carry a revocation made after the export.
      if (!(err instanceof StoreConflictError)) throw err;
      existing++;
    }
  }
  const summary = { imported, existing, pastRetention: expired };
  process.stdout.write(
    ctx.json
      ? JSON.stringify(summary) + "\n"
      : `imported ${imported} token records; ${existing} already present (kept as stored); ${expired} past retention (skipped)\n`,
  );
}
