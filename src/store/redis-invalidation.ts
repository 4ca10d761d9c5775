// Token invalidations over Redis pub/sub: the Redis store publishes the id of every record it
// creates, rotates or revokes (inside the same Lua script as the write, so a write is never
// left unannounced); each replica subscribes on its own connection and drops those ids.
import type { InvalidationFeed } from "./cached-store.ts";
import { connectRedis } from "./redis-connection.ts";

/** The channel shares the store's key prefix, so installations on one Redis stay apart. */
export function invalidationChannel(prefix: string): string {
  return `${prefix}invalidate`;
}

export interface RedisInvalidationOptions {
  readonly url: string;
  readonly prefix: string;
  /**
   * A silent subscriber connection (a dead peer without a FIN) would otherwise look live
   * forever: it is PINGed this often and, without a reply within the same time, dropped.
   */
  readonly heartbeatMs?: number;
  readonly onError?: (op: string, err: unknown) => void;
}

export function subscribeInvalidations(opts: RedisInvalidationOptions): InvalidationFeed {
  const channel = invalidationChannel(opts.prefix);
  const heartbeatMs = opts.heartbeatMs ?? 1000;
  const onError = opts.onError ?? (() => undefined);
  const invalidateListeners: ((id: string) => void)[] = [];
  const liveListeners: ((live: boolean) => void)[] = [];
  let live = false;
  let closed = false;

  // Same topology and credentials as the store (single node or Sentinel; see token-cache.ts for
  // Cluster), with a second's patience: a slow SUBSCRIBE or PING only delays going live.
  // SUBSCRIBE is sent by hand on every 'ready', so "live" means this process saw it confirmed.
  const sub = connectRedis(opts.url, 1000);

  function setLive(next: boolean): void {
    if (next === live) return;
    live = next;
    for (const listener of liveListeners) listener(next);
  }

  sub.on("ready", () => {
    sub.subscribe(channel).then(
      () => {
        if (!closed) setLive(true);
      },
      (err: unknown) => {
        onError("subscribe", err);
        sub.disconnect(true);
      },
    );
  });
  sub.on("close", () => {
    setLive(false);
  });
  sub.on("error", (err: unknown) => {
    // Reported once per outage; ioredis retries on its own.
    if (live) onError("subscriber", err);
    setLive(false);
  });
  sub.on("message", (from: string, id: string) => {
    if (from !== channel) return;
    for (const listener of invalidateListeners) listener(id);
  });

  let beating = false;
  const heartbeat = setInterval(() => {
    if (!live || beating) return;
    beating = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no PONG")), heartbeatMs);
    });
    Promise.race([sub.ping(), timeout])
      .catch((err: unknown) => {
        onError("subscriber heartbeat", err);
        setLive(false);
        sub.disconnect(true);
      })
      .finally(() => {
        clearTimeout(timer);
        beating = false;
      });
  }, heartbeatMs);
  heartbeat.unref();

  return {
    get live() {
      return live;
    },
    onInvalidate(listener) {
      invalidateListeners.push(listener);
    },
    onLiveChange(listener) {
      liveListeners.push(listener);
    },
    async close() {
      closed = true;
      clearInterval(heartbeat);
      setLive(false);
      sub.disconnect();
      await Promise.resolve();
    },
  };
}
