import type { RateOutcome } from "../domain/rate-limit.ts";
import type { RateLimit } from "../domain/scope-types.ts";
import type { TokenRecord } from "../domain/token-record.ts";

/** Raised when the store cannot answer within its deadline; the decision is store_unavailable. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  readonly op: string;
  constructor(op: string, options?: { cause?: unknown }) {
    super(`token store unavailable during ${op}`, options);
    this.op = op;
  }
}

/** A lifecycle request that cannot be carried out (unknown id, already revoked, ...). */
export class StoreConflictError extends Error {
  override readonly name = "StoreConflictError";
}

export interface TokenFilter {
  readonly scope?: string;
  readonly owner?: string;
}

/** The latest verified use of a token (lastUsedAt / lastSource of the record). */
export interface TokenUsage {
  readonly id: string;
  readonly at: number;
  /** Source address, and principal when known; never anything from the request's headers. */
  readonly source: string;
}

export type LifecycleAction = "issue" | "rotate" | "revoke";

/** One lifecycle action, as kept in the store's audit journal. Never holds a secret. */
export interface LifecycleEvent {
  readonly time: number;
  readonly event: LifecycleAction;
  readonly token_id: string;
  readonly scope: string;
  readonly owner: string;
  readonly by: string;
  /** rotate: the id the new token replaces. */
  readonly replaces?: string;
}

export interface EventFilter {
  readonly tokenId?: string;
  readonly scope?: string;
  /** Epoch ms: only events at or after this time. */
  readonly since?: number;
}

/**
 * Token records by id. Implementations: Redis (ioredis) and the embedded file store.
 * Every method rejects with StoreUnavailableError when the backend cannot answer in time.
 */
export interface TokenStore {
  readonly kind: "redis" | "file";
  get(id: string): Promise<TokenRecord | undefined>;
  /** Adds a new record; StoreConflictError if the id exists. */
  create(record: TokenRecord): Promise<void>;
  /** Atomically stores `next` and replaces `previous` (which must still be current and not revoked/rotated). */
  rotate(previous: TokenRecord, next: TokenRecord): Promise<void>;
  /** Sets revokedAt on the record (idempotent); returns the record as stored. */
  revoke(id: string, at: number): Promise<TokenRecord>;
  /** Every record still retained, optionally filtered. */
  list(filter?: TokenFilter): Promise<TokenRecord[]>;
  /**
   * Visits every record still retained, in no particular order, a page at a time: never holds
   * them all at once (the inventory count of a million tokens would otherwise take ~1 GB).
   */
  forEachRecord(visit: (record: TokenRecord) => void): Promise<void>;
  /**
   * Sets lastUsedAt/lastSource on each record that exists and has no later use recorded; never
   * creates a record or changes anything else about it.
   */
  recordUsage(usages: readonly TokenUsage[]): Promise<void>;
  /** Appends to the audit journal, which keeps the newest events up to its cap. */
  appendEvent(event: LifecycleEvent): Promise<void>;
  /** Journal events matching the filter, oldest first. */
  events(filter?: EventFilter): Promise<LifecycleEvent[]>;
  /**
   * Takes one request from the rate budget under `key` (GCRA, see domain/rate-limit.ts),
   * atomically across every replica that shares the store.
   */
  consumeRate(key: string, limit: RateLimit): Promise<RateOutcome>;
  /** Resolves when the backend answers within the deadline. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
