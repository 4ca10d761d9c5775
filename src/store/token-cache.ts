// Puts the in-process cache in front of the Redis store for `serve`. The embedded file store
// is never cached: it has no invalidation feed, and it already serves reads from memory.
// Neither is Redis Cluster (below): single node and Sentinel only.
import { createCachedStore, type CacheLookupResult } from "./cached-store.ts";
import { parseRedisUrl } from "./redis-connection.ts";
import { subscribeInvalidations } from "./redis-invalidation.ts";
import type { TokenStore } from "./token-store.ts";

export interface TokenCacheOptions {
  readonly redisUrl: string | undefined;
  readonly redisPrefix: string;
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly onLookup: (result: CacheLookupResult) => void;
  readonly onError: (op: string, err: unknown) => void;
  /** The feed went live (cache in use) or down (cache dropped and bypassed). */
  readonly onLiveChange?: (live: boolean) => void;
}

/** The store to read tokens through, and how to stop the cache (not the store) again. */
export function withTokenCache(
  store: TokenStore,
  opts: TokenCacheOptions,
): { store: TokenStore; close(): Promise<void> } {
  if (
    store.kind !== "redis" ||
    opts.redisUrl === undefined ||
    opts.ttlMs <= 0 ||
    // ioredis moves a Cluster's subscriber connection between nodes on its own, without an
    // event this process could drop the cache on: a message could be missed. No cache there.
    parseRedisUrl(opts.redisUrl).topology === "cluster"
  ) {
    return { store, close: () => Promise.resolve() };
  }
  const feed = subscribeInvalidations({
    url: opts.redisUrl,
    prefix: opts.redisPrefix,
    onError: opts.onError,
  });
  const cached = createCachedStore(store, feed, opts);
  if (opts.onLiveChange) feed.onLiveChange(opts.onLiveChange);
  return { store: cached, close: () => cached.close() };
}
