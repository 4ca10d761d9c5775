// An in-process cache in front of a TokenStore, for the Check hot path.
//
// Safety rules, in the order they matter:
// - The cache is used only while the invalidation feed is live (subscribed). When it drops, the
//   whole cache is cleared and every lookup goes to the store (fail safe) until it is back.
// - Every write that changes a record (create, rotate, revoke — from any replica or the CLI) is
//   announced on the feed; the named ids are dropped on every replica on arrival.
// - Entries also expire after a short TTL, which caps staleness if a message is ever lost.
// - Store errors are never cached. Time-based fields (expiresAt, graceUntil, notBefore) are
//   evaluated against the clock by decide() on every check, so caching a record is safe for them.
import type { TokenRecord } from "../domain/token-record.ts";
import type { TokenStore } from "./token-store.ts";

export type CacheLookupResult = "hit" | "miss" | "negative_hit" | "bypass";

/** Tells a cache which ids changed elsewhere, and whether it is currently being told. */
export interface InvalidationFeed {
  /** True only while every invalidation published from now on will be delivered. */
  readonly live: boolean;
  onInvalidate(listener: (id: string) => void): void;
  onLiveChange(listener: (live: boolean) => void): void;
  close(): Promise<void>;
}

export interface CacheOptions {
  /** How long a found record is served from memory at most. */
  readonly ttlMs: number;
  /** How long "no such token" is remembered; shorter, so a new token is seen quickly. */
  readonly negativeTtlMs: number;
  readonly maxEntries: number;
  /** Approximate bytes of cached records (see approxRecordBytes). */
  readonly maxBytes: number;
  /** Monotonic milliseconds. */
  readonly clock?: () => number;
  readonly onLookup?: (result: CacheLookupResult) => void;
}

interface Entry {
  readonly record: TokenRecord | undefined;
  readonly expiresAt: number;
  readonly bytes: number;
}

export interface CachedTokenStore extends TokenStore {
  /** Entries and approximate bytes held now (for tests and the bench). */
  stats(): { entries: number; bytes: number };
}

/** The Map slot, the entry, the record object and its property slots. */
const ENTRY_OVERHEAD_BYTES = 256;
const STRING_OVERHEAD_BYTES = 20;

/**
 * Rough heap cost of one cached record: V8 stores ASCII strings one byte per character, so
 * every string costs its length plus a header; numbers and slots are in the overhead.
 */
export function approxRecordBytes(id: string, record: TokenRecord | undefined): number {
  let bytes = ENTRY_OVERHEAD_BYTES + STRING_OVERHEAD_BYTES + id.length;
  if (record === undefined) return bytes;
  for (const value of Object.values(record)) {
    if (typeof value === "string") bytes += STRING_OVERHEAD_BYTES + value.length;
  }
  for (const [k, v] of Object.entries(record.labels)) {
    bytes += 2 * STRING_OVERHEAD_BYTES + k.length + v.length;
  }
  return bytes;
}

export function createCachedStore(
  inner: TokenStore,
  feed: InvalidationFeed,
  opts: CacheOptions,
): CachedTokenStore {
  const clock = opts.clock ?? (() => performance.now());
  const onLookup = opts.onLookup ?? (() => undefined);
  // Map iteration order is insertion order: re-inserting on a hit makes the first key the LRU.
  const entries = new Map<string, Entry>();
  const inflight = new Map<string, Promise<TokenRecord | undefined>>();
  let bytes = 0;
  // Bumped whenever the whole cache is dropped: a lookup that began before must not fill it.
  let generation = 0;

  function remove(id: string): void {
    const entry = entries.get(id);
    if (entry !== undefined) {
      entries.delete(id);
      bytes -= entry.bytes;
    }
  }

  function invalidate(id: string): void {
    remove(id);
    // A lookup already on its way may carry the old record: let it answer its own callers,
    // but neither cache its answer nor hand it to anyone who asks from now on.
    inflight.delete(id);
  }

  function dropAll(): void {
    entries.clear();
    inflight.clear();
    bytes = 0;
    generation++;
  }

  function store(id: string, record: TokenRecord | undefined): void {
    const ttl = record === undefined ? opts.negativeTtlMs : opts.ttlMs;
    if (ttl <= 0) return;
    const entry: Entry = {
      record,
      expiresAt: clock() + ttl,
      bytes: approxRecordBytes(id, record),
    };
    remove(id);
    entries.set(id, entry);
    bytes += entry.bytes;
    while (entries.size > opts.maxEntries || bytes > opts.maxBytes) {
      const oldest = entries.keys().next();
      if (oldest.done === true) break;
      remove(oldest.value);
    }
  }

  function fetch(id: string): Promise<TokenRecord | undefined> {
    const startedIn = generation;
    const flight = inner.get(id).then((record) => {
      if (inflight.get(id) === flight) {
        inflight.delete(id);
        if (generation === startedIn && feed.live) store(id, record);
      }
      return record;
    });
    inflight.set(id, flight);
    // Errors are not cached; the next lookup asks the store again.
    flight.catch(() => {
      if (inflight.get(id) === flight) inflight.delete(id);
    });
    return flight;
  }

  feed.onInvalidate(invalidate);
  feed.onLiveChange(() => {
    // Down: messages may be missed from now on. Up: messages missed meanwhile are unknown.
    // Either way nothing cached before can be trusted.
    dropAll();
  });

  return {
    kind: inner.kind,

    get(id) {
      if (!feed.live) {
        onLookup("bypass");
        return inner.get(id);
      }
      const entry = entries.get(id);
      if (entry !== undefined) {
        if (entry.expiresAt > clock()) {
          // LRU: move to the most recently used end.
          entries.delete(id);
          entries.set(id, entry);
          onLookup(entry.record === undefined ? "negative_hit" : "hit");
          return Promise.resolve(entry.record);
        }
        remove(id);
      }
      onLookup("miss");
      return inflight.get(id) ?? fetch(id);
    },

    async create(record) {
      await inner.create(record);
      invalidate(record.id);
    },

    async rotate(previous, next) {
      await inner.rotate(previous, next);
      invalidate(previous.id);
      invalidate(next.id);
    },

    async revoke(id, at) {
      const record = await inner.revoke(id, at);
      invalidate(id);
      return record;
    },

    list: (filter) => inner.list(filter),
    // Rate budgets are shared state of every replica: never cached.
    consumeRate: (key, limit) => inner.consumeRate(key, limit),
    // Usage times and the audit journal do not change a decision: straight through.
    recordUsage: (usages) => inner.recordUsage(usages),
    appendEvent: (event) => inner.appendEvent(event),
    events: (filter) => inner.events(filter),
    ping: () => inner.ping(),

    stats: () => ({ entries: entries.size, bytes }),

    /** Closes the feed; the inner store belongs to whoever opened it and is closed by them. */
    async close() {
      dropAll();
      await feed.close();
    },
  };
}
