import type { TokenRecord } from "./token-record.ts";
import { createHmac, createSecretKey, hash, timingSafeEqual, type KeyObject } from "node:crypto";
import { crc32 } from "node:zlib";
import { encodeBase62, isBase62, randomBase62 } from "./base62.ts";

// tks_<env>_<id><secret><check> (SPEC §3).
export const TOKEN_PREFIX = "tks_";
export const ID_LENGTH = 12;
export const SECRET_LENGTH = 32;
export const CHECK_LENGTH = 6;
const BODY_LENGTH = ID_LENGTH + SECRET_LENGTH + CHECK_LENGTH;
const ENV_RE = /^[a-z0-9]{1,12}$/;
const ID_RE = /^[0-9A-Za-z]{12}$/;
/** Longest possible token; anything longer is rejected before any parsing work. */
export const MAX_TOKEN_LENGTH = TOKEN_PREFIX.length + 12 + 1 + BODY_LENGTH;

/** A token regex for secret scanners. */
export const TOKEN_SCAN_REGEX = /\btks_[a-z0-9]{1,12}_[0-9A-Za-z]{50}\b/;

export interface ParsedToken {
  readonly environment: string;
  readonly id: string;
  readonly secret: string;
}

export function isValidEnvironment(env: string): boolean {
  return ENV_RE.test(env);
}

export function isValidTokenId(id: string): boolean {
  return ID_RE.test(id);
}

export function checksum(payload: string): string {
  return encodeBase62(crc32(payload), CHECK_LENGTH);
}

export function formatToken(environment: string, id: string, secret: string): string {
  const payload = `${TOKEN_PREFIX}${environment}_${id}${secret}`;
  return payload + checksum(payload);
}

/** Format and checksum only; says nothing about whether the token exists. */
export function parseToken(raw: string): ParsedToken | undefined {
  if (raw.length > MAX_TOKEN_LENGTH || !raw.startsWith(TOKEN_PREFIX)) return undefined;
  const sep = raw.indexOf("_", TOKEN_PREFIX.length);
  if (sep < 0) return undefined;
  const environment = raw.slice(TOKEN_PREFIX.length, sep);
  const body = raw.slice(sep + 1);
  if (!ENV_RE.test(environment) || body.length !== BODY_LENGTH || !isBase62(body)) {
    return undefined;
  }
  const payload = raw.slice(0, raw.length - CHECK_LENGTH);
  if (checksum(payload) !== raw.slice(raw.length - CHECK_LENGTH)) return undefined;
  return {
    environment,
    id: body.slice(0, ID_LENGTH),
    secret: body.slice(ID_LENGTH, ID_LENGTH + SECRET_LENGTH),
  };
}

export interface NewToken {
  readonly token: string;
  readonly parsed: ParsedToken;
}

export function generateToken(
  environment: string,
  randomBytes: (n: number) => Uint8Array,
): NewToken {
  if (!ENV_RE.test(environment)) throw new Error(`invalid environment tag "${environment}"`);
  const id = randomBase62(ID_LENGTH, randomBytes);
  const secret = randomBase62(SECRET_LENGTH, randomBytes);
  return { token: formatToken(environment, id, secret), parsed: { environment, id, secret } };
}

// createHmac with a raw key imports it as a KeyObject on every call, which costs several times
// the hash itself (about 30 µs against 4 µs on Node 24); import each key once instead.
interface ImportedKey {
  readonly object: KeyObject;
  /** Sets this import's record memos apart from any other's (see recordVerified). */
  readonly memoSalt: string;
}
const keyObjects = new WeakMap<Uint8Array, ImportedKey>();
let imports = 0;

// A process checks with one key: the last one answers without a WeakMap lookup.
let lastKey: Uint8Array | undefined;
let lastImported: ImportedKey | undefined;

function importedKey(key: Uint8Array): ImportedKey {
  if (key === lastKey && lastImported !== undefined) return lastImported;
  let imported = keyObjects.get(key);
  if (imported === undefined) {
    imported = { object: createSecretKey(key), memoSalt: `${++imports}\0` };
    keyObjects.set(key, imported);
  }
  lastKey = key;
  lastImported = imported;
  return imported;
}

function keyObject(key: Uint8Array): KeyObject {
  return importedKey(key).object;
}

/**
 * Keyed hash of a token's secret. The id and environment are bound in, so a stored hash cannot
 * be moved to another record.
 */
export function hashSecret(key: Uint8Array, token: ParsedToken): string {
  return createHmac("sha256", keyObject(key))
    .update(`${token.environment}\0${token.id}\0${token.secret}`)
    .digest("hex");
}

export function secretMatches(key: Uint8Array, token: ParsedToken, storedHash: string): boolean {
  const actual = Buffer.from(hashSecret(key, token), "hex");
  const expected = Buffer.from(storedHash, "hex");
  // Length differs only for a corrupt record; timingSafeEqual needs equal lengths.
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/**
 * Records whose secret passed the keyed hash, by the key that checked them, with an unkeyed
 * SHA-256 of what passed. A cached record is the same object on every hit, so the next check of
 * the same token compares one SHA-256 (about 1 µs) instead of computing the HMAC and decoding the
 * stored hex (about 2.5 µs). The digest is of a random 190-bit secret: it cannot be reversed, and
 * it lives only as long as the record object it is attached to.
 */
const secretChecked = new WeakMap<object, { key: Uint8Array; digest: string }>();

/** SHA-256 as a 32-character "binary" (Latin-1) string: the cheapest form Node hands out. */
function secretDigest(token: ParsedToken): string {
  return hash("sha256", `${token.environment}\0${token.id}\0${token.secret}`, "binary");
}

/** Equal strings of equal length, without stopping at the first difference. */
function sameDigest(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** secretMatches for a record object, remembering a secret that passed (see secretChecked). */
export function recordSecretMatches(
  key: Uint8Array,
  token: ParsedToken,
  record: { readonly hash: string },
): boolean {
  const known = secretChecked.get(record);
  // Any other secret takes the full keyed check, so the answer is always that check's answer.
  if (known?.key === key && sameDigest(secretDigest(token), known.digest)) return true;
  const valid = secretMatches(key, token, record.hash);
  if (valid) secretChecked.set(record, { key, digest: secretDigest(token) });
  return valid;
}

/** The record fields a token's grant rests on: whom it is for, where and when it works. */
type SealedFields = Pick<
  TokenRecord,
  "id" | "environment" | "scope" | "owner" | "labels" | "notBefore" | "expiresAt" | "createdAt"
>;

function sealOf(key: Uint8Array, r: SealedFields): string {
  const labels = Object.entries(r.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const fields = [
    r.id,
    r.environment,
    r.scope,
    r.owner,
    labels,
    r.notBefore,
    r.expiresAt,
    r.createdAt,
  ];
  return createHmac("sha256", keyObject(key))
    .update(`tokenscope record v1\0${JSON.stringify(fields)}`)
    .digest("hex");
}

/**
 * The record with its seal: a keyed MAC over the fields that never change after issue. Without
 * the installation key, whoever can write the store cannot point a token at another scope, give it
 * other labels, or stretch its lifetime.
 */
export function sealRecord<T extends SealedFields>(
  key: Uint8Array,
  record: T,
): T & { seal: string } {
  return { ...record, seal: sealOf(key, record) };
}

/**
 * Records found valid, by the key that checked them. Records are read-only values, and a cached
 * one is the same object on every hit: its seal costs one HMAC per cache fill, not per check.
 */
const sealChecked = new WeakMap<object, Uint8Array>();

export function sealMatches(key: Uint8Array, record: SealedFields & { seal?: string }): boolean {
  if (sealChecked.get(record) === key) return true;
  const valid = sealValid(key, record);
  if (valid) sealChecked.set(record, key);
  return valid;
}

function sealValid(key: Uint8Array, record: SealedFields & { seal?: string }): boolean {
  if (record.seal === undefined) return false;
  const actual = Buffer.from(sealOf(key, record), "hex");
  const expected = Buffer.from(record.seal, "hex");
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/**
 * Where a record object may keep the memo of its own checks instead of the two WeakMaps above:
 * the token cache's records do, since an ephemeron table entry and its value cost more than a
 * field (about 170 bytes against 56 per record with 100k records cached). The memo is a SHA-256
 * of the secret that passed, salted with the key's import (importedKey), so that it answers for
 * that key object alone. A Symbol key: JSON can neither set nor carry it, so a record read from a
 * store never has it, and a record written back never takes it along.
 */
export const VERIFIED_DIGEST: unique symbol = Symbol("tokenscope.verifiedDigest");

export interface VerificationSlots {
  /** The salted digest of the secret that passed both keyed checks; "" until one did. */
  [VERIFIED_DIGEST]: string;
}

/**
 * The secret matches the record's hash and the record's seal is intact: decide()'s two keyed
 * checks, in that order. On a record with VerificationSlots, a pass is remembered in the record
 * itself: the same secret under the same key then costs one SHA-256 and a constant-time compare;
 * any other secret, or another key, takes both keyed checks in full again. Other records use
 * the WeakMap memos (recordSecretMatches, sealMatches).
 */
export function recordVerified(
  key: Uint8Array,
  token: ParsedToken,
  record: SealedFields & { readonly hash: string; readonly seal?: string },
): boolean {
  const slots = record as Partial<VerificationSlots>;
  const remembered = slots[VERIFIED_DIGEST];
  if (remembered === undefined) {
    return recordSecretMatches(key, token, record) && sealMatches(key, record);
  }
  const digest = hash(
    "sha256",
    `${importedKey(key).memoSalt}${token.environment}\0${token.id}\0${token.secret}`,
    "binary",
  );
  if (sameDigest(digest, remembered)) return true;
  if (!secretMatches(key, token, record.hash) || !sealValid(key, record)) return false;
  slots[VERIFIED_DIGEST] = digest;
  return true;
}
