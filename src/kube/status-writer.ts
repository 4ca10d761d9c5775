// Writes each TokenScope's Ready condition and observedGeneration through the status
// subresource, off the request path: only when the object does not say it already, after a
// short random delay (so that of several replicas usually one writes and the others then see
// its write), one write at a time, retried with backoff. 409: our copy was stale, the watch is
// bringing the new one and it is looked at again then. 404: the object is gone.
import { validateTokenScope } from "../domain/scope.ts";
import type { ScopeEntry, ScopeValidationOptions } from "../domain/scope-types.ts";
import { backoffDelay, type BackoffPolicy } from "./backoff.ts";
import type { KubeConnection } from "./kube-config.ts";
import type { KubeScopeCache } from "./scope-cache.ts";
import { readyVerdict, statusPatch, type ReadyVerdict } from "./status-conditions.ts";
import { KubeApiError, patchScopeStatus } from "./tokenscope-api.ts";
import type { WatchLog } from "./scope-watcher.ts";
import type { ScopeObject } from "./watch-events.ts";

export interface StatusWriterOptions {
  readonly connection: KubeConnection;
  readonly validation: ScopeValidationOptions;
  readonly log: WatchLog;
  readonly timeoutMs: number;
  /** Upper bound of the random delay before looking at an object. */
  readonly spreadMs?: number;
  readonly backoff?: BackoffPolicy;
  readonly clock?: () => number;
}

export function verdictFor(object: ScopeObject, entry: ScopeEntry, opts: ScopeValidationOptions) {
  if (!entry.ready) return readyVerdict(entry.problems, []);
  return readyVerdict([], validateTokenScope(object.raw, opts).warnings);
}

export class StatusWriter {
  readonly #opts: StatusWriterOptions;
  #cache: KubeScopeCache | undefined;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #failures = new Map<string, number>();
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #stop = new AbortController();

  constructor(opts: StatusWriterOptions) {
    this.#opts = opts;
  }

  attach(cache: KubeScopeCache): void {
    this.#cache = cache;
  }

  /** Look at this object again soon. Never throws. */
  enqueue(key: string, delayMs = Math.random() * (this.#opts.spreadMs ?? 500)): void {
    if (this.#stopped || this.#timers.has(key)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.#chain = this.#chain.then(() => this.#reconcile(key));
    }, delayMs);
    timer.unref();
    this.#timers.set(key, timer);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stop.abort();
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await this.#chain;
  }

  async #reconcile(key: string): Promise<void> {
    const cached = this.#cache?.get(key);
    if (this.#stopped || !cached) return;
    const { object, entry } = cached;
    let verdict: ReadyVerdict;
    let patch: ReturnType<typeof statusPatch>;
    try {
      verdict = verdictFor(object, entry, this.#opts.validation);
      patch = statusPatch(object, verdict, (this.#opts.clock ?? Date.now)());
    } catch (err) {
      this.#opts.log("error", "computing a TokenScope status failed", {
        object: key,
        error: String(err),
      });
      return;
    }
    if (patch === undefined) {
      this.#failures.delete(key);
      return;
    }
    try {
      await patchScopeStatus(this.#opts.connection, object, patch, {
        timeoutMs: this.#opts.timeoutMs,
        signal: this.#stop.signal,
      });
      this.#failures.delete(key);
      this.#opts.log("info", "TokenScope status written", {
        object: key,
        generation: object.generation,
        ready: verdict.status,
        reason: verdict.reason,
      });
    } catch (err) {
      if (!this.#stop.signal.aborted) this.#failed(key, err);
    }
  }

  #failed(key: string, err: unknown): void {
    const code = err instanceof KubeApiError ? err.status.code : 0;
    if (code === 409 || code === 404) {
      this.#opts.log("debug", "TokenScope status not written", { object: key, code });
      return;
    }
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const policy = this.#opts.backoff ?? { initialMs: 500, maxMs: 60_000 };
    const delay = backoffDelay(policy, failures);
    this.#opts.log("warn", "writing a TokenScope status failed; retrying", {
      object: key,
      error: err instanceof Error ? err.message : String(err),
      retry_in_ms: delay,
    });
    this.enqueue(key, delay);
  }
}
