// The token cache on its own: an in-memory inner store whose answers the test releases by hand,
// a feed the test drives, and a clock the test moves. The same cache on a real redis-server and
// real pub/sub is tested in test/integration/cache-invalidation.test.ts.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import type { TokenRecord } from "../../src/domain/token-record.ts";
import { CachedRecord, entryBytes, SharedValues } from "../../src/store/cached-record.ts";
import {
  createCachedStore,
  type CacheLookupResult,
  type CachedTokenStore,
  type InvalidationFeed,
} from "../../src/store/cached-store.ts";
import type { RateOutcome } from "../../src/domain/rate-limit.ts";
import { StoreUnavailableError, type TokenStore } from "../../src/store/token-store.ts";

const T0 = 1_000_000;

function aRecord(id: string, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id,
    hash: "ab".repeat(32),
    scope: "payments/ci",
    owner: "alice",
    environment: "prod",
    labels: { team: "payments" },
    description: "CI deploys",
    createdAt: T0,
    createdBy: "alice@example.com",
    notBefore: T0,
    expiresAt: T0 + 3_600_000,
    ...overrides,
  };
}

/** A store whose gets wait until the test answers them, so concurrency is explicit. */
class HeldStore implements TokenStore {
  readonly kind = "redis" as const;
  readonly records = new Map<string, TokenRecord>();
  readonly pending: { id: string; answer(): void; fail(): void }[] = [];
  gets = 0;
  autoAnswer = true;

  get(id: string): Promise<TokenRecord | undefined> {
    this.gets++;
    if (this.autoAnswer) return Promise.resolve(this.records.get(id));
    return new Promise((resolve, reject) => {
      this.pending.push({
        id,
        answer: () => resolve(this.records.get(id)),
        fail: () => reject(new StoreUnavailableError("get")),
      });
    });
  }
  create(record: TokenRecord): Promise<void> {
    this.records.set(record.id, record);
    return Promise.resolve();
  }
  rotate(previous: TokenRecord, next: TokenRecord): Promise<void> {
    this.records.set(previous.id, previous);
    this.records.set(next.id, next);
    return Promise.resolve();
  }
  revoke(id: string, at: number): Promise<TokenRecord> {
    const record = { ...aRecord(id), ...this.records.get(id), revokedAt: at };
    this.records.set(id, record);
    return Promise.resolve(record);
  }
  consumeRate(): Promise<RateOutcome> {
    return Promise.reject(new Error("not used by the cache tests"));
  }
  recordUsage(): Promise<void> {
    return Promise.reject(new Error("not used by the cache tests"));
  }
  appendEvent(): Promise<void> {
    return Promise.reject(new Error("not used by the cache tests"));
  }
  events(): Promise<never[]> {
    return Promise.reject(new Error("not used by the cache tests"));
  }
  list(): Promise<TokenRecord[]> {
    return Promise.resolve([...this.records.values()]);
  }
  forEachRecord(visit: (record: TokenRecord) => void): Promise<void> {
    this.records.forEach((r) => visit(r));
    return Promise.resolve();
  }
  ping(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class TestFeed implements InvalidationFeed {
  live = true;
  readonly #invalidate: ((id: string) => void)[] = [];
  readonly #liveChange: ((live: boolean) => void)[] = [];
  onInvalidate(listener: (id: string) => void): void {
    this.#invalidate.push(listener);
  }
  onLiveChange(listener: (live: boolean) => void): void {
    this.#liveChange.push(listener);
  }
  publish(id: string): void {
    for (const l of this.#invalidate) l(id);
  }
  setLive(live: boolean): void {
    this.live = live;
    for (const l of this.#liveChange) l(live);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe("token cache", () => {
  let now: number;
  let inner: HeldStore;
  let feed: TestFeed;
  let lookups: CacheLookupResult[];
  let cache: CachedTokenStore;

  function open(overrides: { maxEntries?: number; maxBytes?: number } = {}): CachedTokenStore {
    return createCachedStore(inner, feed, {
      ttlMs: 2000,
      negativeTtlMs: 500,
      maxEntries: overrides.maxEntries ?? 1000,
      maxBytes: overrides.maxBytes ?? 1024 * 1024,
      clock: () => now,
      onLookup: (r) => lookups.push(r),
    });
  }

  beforeEach(() => {
    now = 0;
    inner = new HeldStore();
    feed = new TestFeed();
    lookups = [];
    inner.records.set("A", aRecord("A"));
    cache = open();
  });

  it("serves a found record from memory until its TTL, then asks the store again", async () => {
    assert.equal((await cache.get("A"))?.id, "A");
    now = 1999;
    assert.equal((await cache.get("A"))?.id, "A");
    assert.equal(inner.gets, 1);
    now = 2000;
    await cache.get("A");
    assert.equal(inner.gets, 2);
    assert.deepEqual(lookups, ["miss", "hit", "miss"]);
  });

  it("remembers an unknown id for the shorter negative TTL only", async () => {
    assert.equal(await cache.get("nope"), undefined);
    now = 499;
    assert.equal(await cache.get("nope"), undefined);
    assert.equal(inner.gets, 1);
    now = 500;
    inner.records.set("nope", aRecord("nope"));
    assert.equal((await cache.get("nope"))?.id, "nope");
    assert.deepEqual(lookups, ["miss", "negative_hit", "miss"]);
  });

  it("drops an id named on the feed, so the next check reads the revoked record", async () => {
    await cache.get("A");
    inner.records.set("A", aRecord("A", { revokedAt: T0 }));
    feed.publish("A");
    assert.equal((await cache.get("A"))?.revokedAt, T0);
    assert.equal(inner.gets, 2);
  });

  it("drops the ids it writes itself without waiting for the feed", async () => {
    await cache.get("A");
    await cache.get("B");
    await cache.revoke("A", T0 + 1);
    assert.equal((await cache.get("A"))?.revokedAt, T0 + 1);
    await cache.create(aRecord("B"));
    assert.equal((await cache.get("B"))?.id, "B");
    await cache.rotate(aRecord("A", { replacedBy: "C" }), aRecord("C"));
    assert.equal((await cache.get("A"))?.replacedBy, "C");
  });

  it("joins concurrent misses of one id into a single store read", async () => {
    inner.autoAnswer = false;
    const answers = Promise.all([cache.get("A"), cache.get("A"), cache.get("A")]);
    assert.equal(inner.pending.length, 1);
    inner.pending[0]?.answer();
    const records = await answers;
    assert.deepEqual(
      records.map((r) => r?.id),
      ["A", "A", "A"],
    );
    assert.equal(inner.gets, 1);
    assert.equal((await cache.get("A"))?.id, "A");
    assert.equal(inner.gets, 1);
  });

  it("never caches a store error: every caller fails, the next lookup asks again", async () => {
    inner.autoAnswer = false;
    const first = cache.get("A");
    const joined = cache.get("A");
    inner.pending[0]?.fail();
    await assert.rejects(first, StoreUnavailableError);
    await assert.rejects(joined, StoreUnavailableError);
    inner.autoAnswer = true;
    assert.equal((await cache.get("A"))?.id, "A");
    assert.equal(inner.gets, 2);
  });

  it("does not cache an answer that was on its way when its id was invalidated", async () => {
    inner.autoAnswer = false;
    const before = cache.get("A");
    feed.publish("A");
    // A lookup after the invalidation must not join the older read.
    const after = cache.get("A");
    assert.equal(inner.pending.length, 2);
    inner.records.set("A", aRecord("A", { revokedAt: T0 }));
    for (const p of inner.pending) p.answer();
    await Promise.all([before, after]);
    inner.autoAnswer = true;
    assert.equal((await cache.get("A"))?.revokedAt, T0);
  });

  it("while the feed is down, drops everything and reads through without caching", async () => {
    await cache.get("A");
    feed.setLive(false);
    assert.deepEqual(cache.stats(), { entries: 0, bytes: 0 });
    inner.records.set("A", aRecord("A", { revokedAt: T0 }));
    assert.equal((await cache.get("A"))?.revokedAt, T0);
    await cache.get("A");
    assert.equal(cache.stats().entries, 0);
    assert.deepEqual(lookups.slice(-2), ["bypass", "bypass"]);
    feed.setLive(true);
    await cache.get("A");
    await cache.get("A");
    assert.deepEqual(lookups.slice(-2), ["miss", "hit"]);
  });

  it("does not cache a read that began before the feed dropped and came back", async () => {
    inner.autoAnswer = false;
    const pending = cache.get("A");
    feed.setLive(false);
    feed.setLive(true);
    inner.pending[0]?.answer();
    await pending;
    assert.equal(cache.stats().entries, 0);
  });

  it("evicts the least recently used entry beyond maxEntries", async () => {
    cache = open({ maxEntries: 2 });
    for (const id of ["A", "B", "C"]) inner.records.set(id, aRecord(id));
    await cache.get("A");
    await cache.get("B");
    await cache.get("A"); // A is now more recent than B
    await cache.get("C");
    assert.equal(cache.stats().entries, 2);
    const gets = inner.gets;
    await cache.get("A");
    assert.equal(inner.gets, gets, "A stayed");
    await cache.get("B");
    assert.equal(inner.gets, gets + 1, "B was evicted");
  });

  it("evicts an older entry, never the one just stored, when every entry was read", async () => {
    cache = open({ maxEntries: 2 });
    for (const id of ["A", "B", "C"]) inner.records.set(id, aRecord(id));
    for (const id of ["A", "B", "A", "B", "C"]) await cache.get(id);
    assert.equal(cache.stats().entries, 2);
    const gets = inner.gets;
    await cache.get("C");
    await cache.get("B");
    assert.equal(inner.gets, gets, "C (just stored) and B stayed");
    await cache.get("A");
    assert.equal(inner.gets, gets + 1, "A, the oldest, was evicted");
  });

  it("keeps the approximate bytes under maxBytes", async () => {
    const alone = new SharedValues(0);
    const one = entryBytes("A", new CachedRecord("A", aRecord("A"), alone, 0), alone);
    cache = open({ maxBytes: one * 3 + 10 });
    const ids = ["A", "B", "C", "D", "E"];
    for (const id of ids) inner.records.set(id, aRecord(id));
    for (const id of ids) await cache.get(id);
    assert.equal(cache.stats().entries, 3);
    assert.ok(cache.stats().bytes <= one * 3 + 10);
  });

  it("gives back exactly what it charged: every entry gone, zero bytes", async () => {
    // A shared table with room for some values only (a sixteenth of maxBytes): entries that
    // share, entries charged for their own copies, and unknown ids, in and out in every order.
    cache = open({ maxEntries: 50, maxBytes: 16 * 600 });
    const ids = Array.from({ length: 80 }, (_, i) => `T${i}`);
    ids.forEach((id, i) => {
      if (i % 7 === 0) return; // unknown: a negative entry
      inner.records.set(
        id,
        aRecord(id, {
          scope: `payments/ci-${i % 9}`,
          owner: `owner-${i % 5}-${"x".repeat(i)}`,
          labels: { team: `t${i % 4}` },
          ...(i % 3 === 0 ? { revokedAt: T0 + i, replacedBy: `R${i}` } : {}),
        }),
      );
    });
    for (const id of ids) await cache.get(id);
    for (const id of [...ids].reverse()) await cache.get(id);
    assert.ok(cache.stats().entries > 0);
    for (const id of ids.filter((_, i) => i % 2 === 0)) feed.publish(id);
    for (const id of ids.slice(0, 30)) await cache.get(id);
    for (const id of ids) feed.publish(id);
    assert.deepEqual(cache.stats(), { entries: 0, bytes: 0 });
  });

  it("counts a larger record as more bytes, and an unknown id as fewer", async () => {
    cache = open({ maxBytes: 1000 }); // too small to share values: each entry pays its own
    await cache.get("A");
    const small = cache.stats().bytes;
    await cache.close();
    cache = open({ maxBytes: 10_000 });
    inner.records.set("L", aRecord("L", { labels: { team: "x".repeat(1000) } }));
    await cache.get("L");
    assert.ok(cache.stats().bytes - small >= 1000 - "payments".length);
    await cache.close();
    cache = open({ maxBytes: 1000 });
    await cache.get("nope");
    assert.ok(cache.stats().bytes < small);
  });

  it("never counts more than maxBytes, the shared scopes, owners and labels included", async () => {
    const maxBytes = 20_000;
    cache = open({ maxBytes });
    for (let i = 0; i < 500; i++) {
      const id = `R${i}`;
      const shape = i % 2 === 0 ? {} : { scope: `ns/s${i}`, owner: `o${i}`, labels: { t: `${i}` } };
      inner.records.set(id, aRecord(id, shape));
      await cache.get(id);
      assert.ok(cache.stats().bytes <= maxBytes, `${cache.stats().bytes} after ${id}`);
    }
    assert.ok(cache.stats().entries > 10);
    feed.setLive(false);
    assert.deepEqual(
      cache.stats(),
      { entries: 0, bytes: 0 },
      "the shared values go with the last entry",
    );
  });

  it("serves a record as cached from the miss on: every check of it gets the same object", async () => {
    const first = await cache.get("A");
    assert.equal(await cache.get("A"), first);
    assert.notEqual(first, inner.records.get("A"));
  });
});
