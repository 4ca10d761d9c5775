// Token invalidations over Redis pub/sub: the Redis store publishes the id of every record it
// creates, rotates or revokes (inside the same Lua script as the write, so a write is never
// left unannounced); each replica subscribes on its own connection and drops those ids.
import { Redis } from "ioredis";
import type { InvalidationFeed } from "./cached-store.ts";

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

  const sub = new Redis(opts.url, {
    // Subscribing is done by hand on every 'ready', so "live" means the SUBSCRIBE was confirmed.
    autoResubscribe: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: (attempt: number) => Math.min(attempt * 50, 500),
  });

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
