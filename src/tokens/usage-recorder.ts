// lastUsedAt / lastSource (SPEC §3), written back off the request path: a Check only notes the
// use in memory; a timer writes the latest use of each token in one batch per interval, so each
// token gets at most one store write per interval (10 s by default) however busy it is.
import type { TokenStore } from "../store/token-store.ts";
import type { Logger } from "../observability/logger.ts";

export interface UsageRecorderOptions {
  readonly store: Pick<TokenStore, "recordUsage">;
  readonly logger: Logger;
  readonly intervalMs: number;
  /** Most distinct tokens held between flushes; further uses wait for the next interval. */
  readonly maxPending?: number;
}

export class UsageRecorder {
  readonly #opts: UsageRecorderOptions;
  #pending = new Map<string, { id: string; at: number; source: string }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(opts: UsageRecorderOptions) {
    this.#opts = opts;
  }

  /** Called on the request path: a map write, nothing else. */
  seen(id: string, at: number, source: string | undefined): void {
    const max = this.#opts.maxPending ?? 100_000;
    const pending = this.#pending.get(id);
    if (pending !== undefined) {
      // A busy token: the entry waiting for the next flush is brought up to date in place.
      pending.at = at;
      pending.source = source ?? "";
      return;
    }
    if (this.#pending.size >= max) return;
    this.#pending.set(id, { id, at, source: source ?? "" });
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
