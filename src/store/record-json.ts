import type { TokenRecord } from "../domain/token-record.ts";

// Records come back from disk or Redis, where anything may have been written. A record that does
// not have exactly the expected shape is rejected as a whole: a half-understood record (say, a
// revokedAt stored as a string) must never be read as "not revoked".

const REQUIRED_STRINGS = [
  "id",
  "hash",
  "scope",
  "owner",
  "environment",
  "description",
  "createdBy",
];
const REQUIRED_NUMBERS = ["createdAt", "notBefore", "expiresAt"];
const OPTIONAL_STRINGS = ["replacedBy", "replaces", "lastSource", "seal"];
const OPTIONAL_NUMBERS = ["revokedAt", "graceUntil", "lastUsedAt"];

export class RecordDecodeError extends Error {
  override readonly name = "RecordDecodeError";
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isLabels(value: unknown): value is Record<string, string> {
  return isPlainObject(value) && Object.values(value).every((v) => typeof v === "string");
}

function problem(value: Record<string, unknown>): string | undefined {
  for (const k of REQUIRED_STRINGS) if (typeof value[k] !== "string") return `${k} is not a string`;
  for (const k of REQUIRED_NUMBERS) {
    if (!Number.isFinite(value[k])) return `${k} is not a number`;
  }
  for (const k of OPTIONAL_STRINGS) {
    if (k in value && typeof value[k] !== "string") return `${k} is not a string`;
  }
  for (const k of OPTIONAL_NUMBERS) {
    if (k in value && !Number.isFinite(value[k])) return `${k} is not a number`;
  }
  if (!isLabels(value.labels)) return "labels is not a string map";
  return undefined;
}

/** Validates an already-parsed value; throws RecordDecodeError naming the first bad field. */
export function toTokenRecord(value: unknown): TokenRecord {
  if (!isPlainObject(value)) throw new RecordDecodeError("token record is not an object");
  const bad = problem(value);
  if (bad !== undefined) throw new RecordDecodeError(`token record: ${bad}`);
  return value as unknown as TokenRecord;
}

export function decodeRecord(json: string): TokenRecord {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new RecordDecodeError("token record is not valid JSON", { cause: err });
  }
  return toTokenRecord(value);
}

export function encodeRecord(record: TokenRecord): string {
  return JSON.stringify(record);
}

export function matchesFilter(
  record: TokenRecord,
  filter: { readonly scope?: string; readonly owner?: string } | undefined,
): boolean {
  if (filter?.scope !== undefined && record.scope !== filter.scope) return false;
  if (filter?.owner !== undefined && record.owner !== filter.owner) return false;
  return true;
}
