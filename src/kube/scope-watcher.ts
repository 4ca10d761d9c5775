// List, then watch from the list's resourceVersion, for as long as the process runs. Our own
// loop rather than client-node's informer, whose known defects it avoids: the informer stops
// for good on any error but 410 (kubernetes-client/javascript#1933, fixed only in 2.x by #3034),
// its start() resolves when the first list failed and a later list error is an unhandled
// rejection (#447), and a half-open connection stalls it silently (#364, #958, #2432). Here every
// failure restarts with backoff, a 410 relists, and a watchdog relists when nothing (not even a
// bookmark) arrives for `watchTimeoutMs`. Nothing thrown by event handling escapes the loop.
import { Backoff, type BackoffPolicy } from "./backoff.ts";
import type { KubeConnection } from "./kube-config.ts";
import { KubeApiError, listScopes } from "./tokenscope-api.ts";
import type { KubeScopeCache } from "./scope-cache.ts";
import { parseWatchEvent } from "./watch-events.ts";
import { watchOnce, type RestartReason, type WatchFault } from "./watch-attempt.ts";

export type { RestartReason } from "./watch-attempt.ts";

export type WatchLog = (
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

export interface ScopeWatcherOptions {
  readonly connection: KubeConnection;
  readonly cache: KubeScopeCache;
  /** undefined = all namespaces */
  readonly namespace: string | undefined;
  /** The longest silence tolerated on a watch; also the deadline for list and connect. */
  readonly watchTimeoutMs: number;
  readonly pageSize?: number;
  readonly backoff?: BackoffPolicy;
  readonly log: WatchLog;
  readonly onRestart: (reason: RestartReason) => void;
  readonly onSynced: () => void;
  readonly onBroken: (error: string) => void;
}

function guarded<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch {
      // Nothing to report it to: the logger may be what threw.
    }
  };
}

export class ScopeWatcher {
  readonly #opts: ScopeWatcherOptions;
  readonly #backoff: Backoff;
  readonly #stop = new AbortController();
  #resourceVersion: string | undefined;
  #relist = true;
  #listedAt = 0;
  #done: Promise<void> = Promise.resolve();

  constructor(opts: ScopeWatcherOptions) {
    // The callers' callbacks run inside stream listeners and this loop: a throw from one of
    // them must neither crash the process nor end the loop.
    this.#opts = {
      ...opts,
      log: guarded(opts.log),
      onRestart: guarded(opts.onRestart),
      onSynced: guarded(opts.onSynced),
      onBroken: guarded(opts.onBroken),
    };
    this.#backoff = new Backoff(opts.backoff);
  }

  start(): void {
    this.#done = this.#run().catch((err: unknown) => {
      // Unreachable by construction; logged rather than left as an unhandled rejection.
      this.#opts.log("error", "TokenScope watch loop ended unexpectedly", { error: String(err) });
    });
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }

  async #run(): Promise<void> {
    this.#relist = true;
    while (!this.#stop.signal.aborted) {
      try {
        await this.#cycle();
      } catch (err) {
        // A bug of ours; start again from a fresh list rather than stop watching.
        this.#opts.log("error", "TokenScope watch loop failed; relisting", { error: String(err) });
        this.#relist = true;
        await this.#sleep(this.#backoff.next());
      }
    }
  }

  /** One list (when needed) and one watch, then the wait before the next. */
  async #cycle(): Promise<void> {
    if (this.#relist) {
      if (!(await this.#list())) {
        await this.#sleep(this.#backoff.next());
        return;
      }
      this.#relist = false;
    }
    const started = Date.now();
    const outcome = await watchOnce({
      connection: this.#opts.connection,
      namespace: this.#opts.namespace,
      resourceVersion: this.#resourceVersion ?? "0",
      timeoutMs: this.#opts.watchTimeoutMs,
      stop: this.#stop.signal,
      onOpen: () => this.#opts.onSynced(),
      onLine: (line) => {
        // Not on open: a server that accepts every watch and drops it at once must back off.
        this.#backoff.reset();
        return this.#handle(line);
      },
    });
    if (outcome === "stopped") return;
    this.#opts.onRestart(outcome.restart);
    const relist = outcome.relist;
    this.#relist = relist;
    const quick = Date.now() - started < 1000;
    if (outcome.error !== undefined) {
      this.#opts.onBroken(outcome.error);
      this.#opts.log("warn", "TokenScope watch failed; restarting", {
        reason: outcome.restart,
        error: outcome.error,
        relist,
      });
      await this.#sleep(this.#backoff.next());
    } else if (outcome.restart === "expired" && Date.now() - this.#listedAt > 1000) {
      // Relist at once on 410 (as client-go does); an expiry right after a list backs off.
      this.#backoff.reset();
    } else if (quick) {
      // A server that ends every watch at once must not be hammered.
      await this.#sleep(this.#backoff.next());
    } else {
      this.#backoff.reset();
    }
  }

  /** One (paged) list into the cache. False, logged and reported, when it failed. */
  async #list(): Promise<boolean> {
    try {
      const list = await listScopes(this.#opts.connection, {
        namespace: this.#opts.namespace,
        pageSize: this.#opts.pageSize ?? 500,
        timeoutMs: this.#opts.watchTimeoutMs,
        signal: this.#stop.signal,
      });
      if (this.#stop.signal.aborted) return false;
      this.#opts.cache.replaceAll(list.objects);
      this.#resourceVersion = list.resourceVersion;
      this.#listedAt = Date.now();
      for (const why of list.skipped) this.#opts.log("warn", "ignored a listed item", { why });
      this.#opts.log("info", "TokenScopes listed", {
        count: list.objects.length,
        resourceVersion: list.resourceVersion,
      });
      this.#opts.onSynced();
      return true;
    } catch (err) {
      const error = err instanceof KubeApiError || err instanceof Error ? err.message : String(err);
      this.#opts.onBroken(error);
      this.#opts.log("warn", "listing TokenScopes failed; retrying", { error });
      return false;
    }
  }

  /** One event line; a returned fault ends this watch. */
  #handle(line: string): WatchFault | undefined {
    const event = parseWatchEvent(line);
    switch (event.type) {
      case "invalid":
        this.#opts.log("warn", "ignored a watch event", { why: event.why });
        return undefined;
      case "BOOKMARK":
        this.#resourceVersion = event.resourceVersion;
        return undefined;
      case "ERROR": {
        const { code, reason, message } = event.status;
        const expired = code === 410 || reason === "Expired" || reason === "Gone";
        if (expired) {
          this.#opts.log("info", "TokenScope watch expired; relisting", { message });
          return { restart: "expired", relist: true };
        }
        return {
          restart: "error",
          relist: true,
          error: `watch ERROR ${code} ${reason}: ${message}`,
        };
      }
      case "DELETED":
        this.#opts.cache.delete(event.object.key);
        this.#resourceVersion = event.object.resourceVersion;
        return undefined;
      case "ADDED":
      case "MODIFIED":
        this.#opts.cache.upsert(event.object);
        this.#resourceVersion = event.object.resourceVersion;
        return undefined;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#stop.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#stop.signal.addEventListener("abort", done);
    });
  }
}
