// lastUsedAt / lastSource (SPEC §3), written back off the request path: a Check only notes the
// use in memory; a timer writes the latest use of each token in one batch per interval, so each
// token gets at most one store write per interval (10 s by default) however busy it is.
import type { TokenStore, TokenUsage } from "../store/token-store.ts";
import type { Logger } from "../observability/logger.ts";

export interface UsageRecorderOptions {
  readonly store: Pick<TokenStore, "recordUsage">;
  readonly logger: Logger;
  readonly intervalMs: number;
  /** Most distinct tokens held between flushes; further uses wait for the next interval. */
  readonly maxPending?: number;
}

/** A pending use, updated in place while its token stays busy. */
interface PendingUse extends TokenUsage {
  at: number;
  source: string;
}

export class UsageRecorder {
  readonly #opts: UsageRecorderOptions;
  #pending = new Map<string, PendingUse>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(opts: UsageRecorderOptions) {
    this.#opts = opts;
  }

  /**
   * Called on the request path: a map lookup, nothing else. A token already pending is updated
   * in place rather than given a new entry: a new object per check would live until the next
   * flush, long enough to be promoted to V8's old generation, and die there (old-space garbage
   * that only a full GC reclaims: with 100k busy tokens, tens of MB of resident memory).
   */
  seen(id: string, at: number, source: string | undefined): void {
    const from = source ?? "";
    const use = this.#pending.get(id);
    if (use !== undefined) {
      use.at = at;
      // Keep the string already held when it is the same: the new one then dies young.
      if (use.source !== from) use.source = from;
      return;
    }
    if (this.#pending.size >= (this.#opts.maxPending ?? 100_000)) return;
    this.#pending.set(id, { id, at, source: from });
  }

  get pending(): number {
    return this.#pending.size;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** Writes what was seen since the last flush, as one batch. Never rejects. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending = new Map();
      try {
        await this.#opts.store.recordUsage(batch);
      } catch (err) {
        // Best effort: usage is informational and the next use of each token writes it again.
        this.#opts.logger.log("warn", "token usage not written", {
          tokens: batch.length,
          err: String(err),
        });
      }
    });
    return this.#flushing;
  }

  /** Stops the timer and writes what is pending. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
