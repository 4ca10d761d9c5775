// What the token cache keeps of a record, and what that costs. The cache serves the Check path
// only (src/main.ts hands it to the check service, nothing else), so a cached record keeps what a
// Check reads and nothing more:
// - decide(): id, environment, hash (secret) and seal (as the bytes they decode to), and the
//   lifecycle: revokedAt, replacedBy, graceUntil, notBefore, expiresAt (tokenState); labels;
// - the seal (sealMatches): id, environment, scope, owner, labels, notBefore, expiresAt, createdAt;
// - the response, metrics and audit: id, scope, owner (decide's TokenIdentity).
// Left out: description and createdBy (free text, unbounded), replaces, lastUsedAt and
// lastSource. Records are read-only values; whoever needs the whole record reads the store.
//
// Scope, owner, environment and label sets repeat across many tokens, yet every JSON.parse makes
// new copies: the cache shares one copy of each, from a bounded table.
import { inspect } from "node:util";
import { VERIFIED_DIGEST, type VerificationSlots } from "../domain/token.ts";
import type { TokenRecord } from "../domain/token-record.ts";
import { AbsoluteTime, timeAt, timeFrom, type RecordTime } from "./record-times.ts";

type Labels = TokenRecord["labels"];

/** Revocation and rotation, on the few records that have either. */
interface Lifecycle {
  readonly revokedAt: number | undefined;
  readonly replacedBy: string | undefined;
  readonly graceUntil: number | undefined;
}

/**
 * A cached record, and its cache entry: `cachedUntil` (monotonic ms) is when the cache stops
 * serving it. One object per entry, with one fixed shape for every record.
 *
 * Compact where a Check allows it, with the record's fields read through getters: the hash and
 * the seal are kept as the 64 bytes they decode to (one Latin-1 string, 80 heap bytes, against
 * 160 for the two hex strings); notBefore and expiresAt as small-integer offsets from createdAt
 * (record-times.ts); revokedAt, replacedBy and graceUntil in one field, unset on most records;
 * and the memo of the secret and seal checks is a field of the record (VerificationSlots)
 * rather than entries in two WeakMaps.
 */
export class CachedRecord implements VerificationSlots {
  readonly id: string;
  readonly scope: string;
  readonly owner: string;
  readonly environment: string;
  readonly labels: Labels;
  readonly createdAt: number;
  readonly #notBefore: RecordTime;
  readonly #expiresAt: RecordTime;
  readonly #lifecycle: Lifecycle | undefined;
  /** The hash's 32 bytes then the seal's 32, as Latin-1; "" when either is not 32 bytes. */
  readonly #proof: string;
  readonly cachedUntil: number;
  /** Read since the cache last passed it by for eviction (the cache's second-chance bit). */
  used = false;
  #verified = "";

  constructor(id: string, r: TokenRecord, shared: SharedValues, cachedUntil: number) {
    // The key the cache looks it up by: the same string, not a second copy (the store checks
    // that a record's id is the id it was read under).
    this.id = id;
    this.scope = shared.string(r.scope);
    this.owner = shared.string(r.owner);
    this.environment = shared.string(r.environment);
    this.labels = shared.labels(r.labels);
    this.createdAt = r.createdAt;
    this.#notBefore = timeFrom(r.createdAt, r.notBefore);
    this.#expiresAt = timeFrom(r.createdAt, r.expiresAt);
    this.#lifecycle =
      r.revokedAt === undefined && r.replacedBy === undefined && r.graceUntil === undefined
        ? undefined
        : { revokedAt: r.revokedAt, replacedBy: r.replacedBy, graceUntil: r.graceUntil };
    this.#proof = proofOf(r.hash, r.seal);
    this.cachedUntil = cachedUntil;
  }

  /**
   * The memo (VerificationSlots) behind an accessor: a spread or Object.assign copy of the
   * record takes own fields, not accessors or private fields, so a copy never carries a memo
   * (and, having none, is checked in full, where its missing hash fails).
   */
  get [VERIFIED_DIGEST](): string {
    return this.#verified;
  }

  set [VERIFIED_DIGEST](digest: string) {
    this.#verified = digest;
  }

  get notBefore(): number {
    return timeAt(this.createdAt, this.#notBefore);
  }

  get expiresAt(): number {
    return timeAt(this.createdAt, this.#expiresAt);
  }

  get revokedAt(): number | undefined {
    return this.#lifecycle?.revokedAt;
  }

  get replacedBy(): string | undefined {
    return this.#lifecycle?.replacedBy;
  }

  get graceUntil(): number | undefined {
    return this.#lifecycle?.graceUntil;
  }

  /**
   * The hash as secretMatches reads it: the bytes its hex decodes to. A hash or seal that does
   * not decode to exactly 32 bytes can never match (secretMatches, sealMatches compare 32 bytes),
   * so either one being so is kept as "never matches": hash "" and no seal.
   */
  get hash(): string {
    return this.#proof === "" ? "" : hexOf(this.#proof.slice(0, DIGEST_BYTES));
  }

  get seal(): string | undefined {
    return this.#proof === "" ? undefined : hexOf(this.#proof.slice(DIGEST_BYTES));
  }

  /** Heap bytes held by this record alone, beyond its fields and the shared values. */
  get ownBytes(): number {
    let bytes = stringBytes(this.#proof) + numberBytes(this.createdAt);
    bytes += timeBytes(this.#notBefore) + timeBytes(this.#expiresAt);
    const l = this.#lifecycle;
    if (l !== undefined) {
      bytes += OBJECT_HEADER + 3 * WORD + numberBytes(l.revokedAt) + numberBytes(l.graceUntil);
      if (l.replacedBy !== undefined) bytes += stringBytes(l.replacedBy);
    }
    return bytes;
  }

  /**
   * As the TokenRecord the store interface hands out. The fields left out (see the header) are
   * read by no code on the Check path; test/unit/cached-record.test.ts holds decide() to that.
   */
  asRecord(): TokenRecord {
    return this as unknown as TokenRecord;
  }

  /** Never the memo (a digest of the secret that passed) in a log or a REPL. */
  [inspect.custom](): object {
    const { id, scope, owner, environment, labels, notBefore, expiresAt } = this;
    return { id, scope, owner, environment, labels, notBefore, expiresAt };
  }
}

const DIGEST_BYTES = 32;

function proofOf(hash: string, seal: string | undefined): string {
  if (seal === undefined) return "";
  const h = Buffer.from(hash, "hex");
  const s = Buffer.from(seal, "hex");
  if (h.length !== DIGEST_BYTES || s.length !== DIGEST_BYTES) return "";
  // A flat one-byte string of 64 characters: its own copy, never a slice of a larger string.
  return Buffer.concat([h, s]).toString("latin1");
}

function hexOf(latin1: string): string {
  return Buffer.from(latin1, "latin1").toString("hex");
}

/** "No such token", remembered until `cachedUntil`. */
export class CachedAbsence {
  readonly cachedUntil: number;
  used = false;
  constructor(cachedUntil: number) {
    this.cachedUntil = cachedUntil;
  }
}

export type CacheEntry = CachedRecord | CachedAbsence;

// Heap cost on 64-bit V8 without pointer compression (Node's build), as measured by
// test/unit/cached-record.test.ts: a string is a 16-byte header and its characters (one byte each
// for ASCII, two otherwise), in 8-byte units; a JS object is a 24-byte header and 8 bytes a
// field; a number that is not a small integer is a 16-byte box.
const WORD = 8;
const OBJECT_HEADER = 24;
const STRING_HEADER = 16;
const NUMBER_BOX = 16;
/** The Map's slot (key, value, chain, and its share of buckets and spare capacity). */
const MAP_SLOT = 48;
/**
 * The memo of the secret check (VerificationSlots): the SHA-256 of the secret that passed, as a
 * 32-character string, once the record was checked (charged up front: a cached record is checked).
 */
const MEMO_DIGEST = STRING_HEADER + 32;
const RECORD_FIELDS = 13;
const ABSENCE_FIELDS = 2;

function oneBytePerChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

export function stringBytes(s: string): number {
  const perChar = oneBytePerChar(s) ? 1 : 2;
  return STRING_HEADER + Math.ceil((s.length * perChar) / WORD) * WORD;
}

function numberBytes(n: number | undefined): number {
  return n === undefined || (Number.isInteger(n) && Math.abs(n) < 2 ** 31) ? 0 : NUMBER_BOX;
}

function timeBytes(t: RecordTime): number {
  return t instanceof AbsoluteTime ? OBJECT_HEADER + WORD + numberBytes(t.at) : 0;
}

function labelsBytes(labels: Labels): number {
  let bytes = OBJECT_HEADER;
  for (const [k, v] of Object.entries(labels)) bytes += WORD + stringBytes(k) + stringBytes(v);
  return bytes;
}

/**
 * What an entry was charged when it came in: charged again when it leaves, rather than kept in a
 * field of every entry. The answer does not change in between: the shared table holds a value from
 * the first entry that has it until the cache is empty (SharedValues), or never holds it.
 */
export function entryBytes(id: string, entry: CacheEntry, shared: SharedValues): number {
  return entry instanceof CachedRecord
    ? approxEntryBytes(id, entry, shared)
    : approxEntryBytes(id, undefined, undefined);
}

/**
 * Heap bytes one cache entry adds: the Map slot, the key, the entry object with its number boxes
 * and strings, and the memo of the secret and seal checks. Strings and label sets held by the
 * shared table are not charged per entry: the table charges them once (SharedValues.bytes).
 */
export function approxEntryBytes(
  id: string,
  record: CachedRecord | undefined,
  shared: SharedValues | undefined,
): number {
  let bytes = MAP_SLOT + stringBytes(id);
  if (record === undefined) return bytes + OBJECT_HEADER + ABSENCE_FIELDS * WORD + NUMBER_BOX;
  bytes += OBJECT_HEADER + RECORD_FIELDS * WORD + MEMO_DIGEST + record.ownBytes;
  for (const s of [record.scope, record.owner, record.environment]) {
    if (shared?.holds(s) !== true) bytes += stringBytes(s);
  }
  if (shared?.holds(record.labels) !== true) bytes += labelsBytes(record.labels);
  return bytes;
}

/** Longest string or label set (as its JSON key) worth sharing. */
const MAX_SHARED_LENGTH = 256;

/**
 * One copy of each repeated scope, owner, environment and label set. Bounded by a byte budget:
 * once full, new values are not shared (and are charged to their entry instead). Cleared only
 * when no cached entry is left, so every shared value a cached record points to stays counted,
 * and whether a value is held never changes while an entry has it: a value too long or too big
 * for what is left of the budget stays so, since the table only grows until it is cleared.
 */
export class SharedValues {
  readonly #budget: number;
  readonly #strings = new Map<string, string>();
  readonly #labels = new Map<string, Labels>();
  #held = new WeakSet<Labels>();
  #bytes = 0;

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
  }

  /** Heap bytes of the table and what it holds. */
  get bytes(): number {
    return this.#bytes;
  }

  string(s: string): string {
    const known = this.#strings.get(s);
    if (known !== undefined) return known;
    const cost = MAP_SLOT + stringBytes(s);
    if (s.length > MAX_SHARED_LENGTH || this.#bytes + cost > this.#budget) return s;
    this.#strings.set(s, s);
    this.#bytes += cost;
    return s;
  }

  labels(labels: Labels): Labels {
    const key = JSON.stringify(labels);
    const known = this.#labels.get(key);
    if (known !== undefined) return known;
    const cost = MAP_SLOT + stringBytes(key) + labelsBytes(labels);
    if (key.length > MAX_SHARED_LENGTH || this.#bytes + cost > this.#budget) return labels;
    // Shared by many records from now on: nobody may change it (records are read-only anyway).
    const frozen = Object.freeze({ ...labels });
    this.#labels.set(key, frozen);
    this.#held.add(frozen);
    this.#bytes += cost;
    return frozen;
  }

  holds(value: string | Labels): boolean {
    return typeof value === "string" ? this.#strings.has(value) : this.#held.has(value);
  }

  clear(): void {
    this.#strings.clear();
    this.#labels.clear();
    this.#held = new WeakSet();
    this.#bytes = 0;
  }
}
