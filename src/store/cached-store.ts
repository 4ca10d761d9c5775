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
import {
  CachedAbsence,
  CachedRecord,
  entryBytes,
  SharedValues,
  type CacheEntry,
} from "./cached-record.ts";

export { approxEntryBytes } from "./cached-record.ts";

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
  /** Approximate heap bytes of the cache (see approxEntryBytes in cached-record.ts). */
  readonly maxBytes: number;
  /** Monotonic milliseconds. */
  readonly clock?: () => number;
  readonly onLookup?: (result: CacheLookupResult) => void;
}

export interface CachedTokenStore extends TokenStore {
  /** Entries and their approximate heap bytes now, shared values included (tests, bench). */
  stats(): { entries: number; bytes: number };
}

export function createCachedStore(
  inner: TokenStore,
  feed: InvalidationFeed,
  opts: CacheOptions,
): CachedTokenStore {
  const clock = opts.clock ?? (() => performance.now());
  const onLookup = opts.onLookup ?? (() => undefined);
  // Map iteration order is insertion order, the first key the oldest. Eviction gives a second
  // chance (CLOCK): a hit only sets the entry's `used` bit, and the oldest entry, when it has the
  // bit, is moved to the newest end with the bit cleared instead of leaving. A hit that moved its
  // entry itself (delete and set) would cost two more hash operations, and leave a deleted slot
  // in the Map's table each time: with 100k busy entries, the table doubled to make room for
  // them (about 36 more bytes an entry).
  const entries = new Map<string, CacheEntry>();
  const inflight = new Map<string, Promise<TokenRecord | undefined>>();
  // Up to a sixteenth of the budget for one copy of each repeated scope, owner and label set.
  const shared = new SharedValues(Math.floor(opts.maxBytes / 16));
  let bytes = 0;
  // Bumped whenever the whole cache is dropped: a lookup that began before must not fill it.
  let generation = 0;

  function remove(id: string): void {
    const entry = entries.get(id);
    if (entry !== undefined) {
      entries.delete(id);
      bytes -= entryBytes(id, entry, shared);
      // No record points into the shared table any more: start it afresh.
      if (entries.size === 0) shared.clear();
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
    shared.clear();
    bytes = 0;
    generation++;
  }

  /** Caches what the store answered; returns the record as cached (compact), if it was. */
  function store(id: string, record: TokenRecord | undefined): CacheEntry | undefined {
    const ttl = record === undefined ? opts.negativeTtlMs : opts.ttlMs;
    if (ttl <= 0) return undefined;
    remove(id);
    // Whole milliseconds: a small integer is stored in place, a fraction in a 16-byte box.
    const until = Math.floor(clock() + ttl);
    const entry =
      record === undefined ? new CachedAbsence(until) : new CachedRecord(id, record, shared, until);
    entries.set(id, entry);
    bytes += entryBytes(id, entry, shared);
    while (entries.size > opts.maxEntries || bytes + shared.bytes > opts.maxBytes) {
      const oldest = entries.entries().next();
      if (oldest.done === true) break;
      const [oldestId, oldestEntry] = oldest.value;
      // The entry just stored is passed over too, unless it is the only one: the first to go is
      // then an older entry, all of which have had their chance.
      if (oldestEntry === entry ? entries.size > 1 : oldestEntry.used) {
        oldestEntry.used = false;
        entries.delete(oldestId);
        entries.set(oldestId, oldestEntry);
      } else {
        remove(oldestId);
      }
    }
    return entry;
  }

  function fetch(id: string): Promise<TokenRecord | undefined> {
    const startedIn = generation;
    const flight = inner.get(id).then((record) => {
      if (inflight.get(id) === flight) {
        inflight.delete(id);
        if (generation === startedIn && feed.live) {
          // Everyone who waited gets the cached object: the seal is checked once per object.
          const entry = store(id, record);
          if (entry instanceof CachedRecord) return entry.asRecord();
        }
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
        if (entry.cachedUntil > clock()) {
          entry.used = true;
          if (entry instanceof CachedRecord) {
            onLookup("hit");
            return Promise.resolve(entry.asRecord());
          }
          onLookup("negative_hit");
          return Promise.resolve(undefined);
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
    forEachRecord: (visit) => inner.forEachRecord(visit),
    // Rate budgets are shared state of every replica: never cached.
    consumeRate: (key, limit) => inner.consumeRate(key, limit),
    // Usage times and the audit journal do not change a decision: straight through.
    recordUsage: (usages) => inner.recordUsage(usages),
    appendEvent: (event) => inner.appendEvent(event),
    events: (filter) => inner.events(filter),
    ping: () => inner.ping(),

    stats: () => ({ entries: entries.size, bytes: bytes + shared.bytes }),

    /** Closes the feed; the inner store belongs to whoever opened it and is closed by them. */
    async close() {
      dropAll();
      await feed.close();
    },
  };
}
