// tokenscope_token_checks_total (SPEC §6): one counter series per verified token id, decision and
// reason, with a hard cap on distinct ids. Every label set made for an id is remembered, because
// prom-client's remove() takes a full label set and an id must leave the exposition completely.
import type { Counter } from "prom-client";

export const OVERFLOW_TOKEN_ID = "_overflow";

export type TokenLabel = "token_id" | "scope" | "owner" | "decision" | "reason";
type Labels = Record<TokenLabel, string>;

export interface TokenCheck {
  readonly id: string;
  readonly scope: string;
  readonly owner: string;
  readonly decision: string;
  readonly reason: string;
}

export interface TokenSeriesOptions {
  /** Most distinct token ids exported at once; further ids count under `_overflow`. */
  readonly maxTokens: number;
  /** An id unseen for this long is removed with all its label sets. */
  readonly idleMs: number;
  readonly clock: () => number;
}

interface Tracked {
  lastSeen: number;
  /** decision|reason|scope|owner → the label object passed to inc(), reused on every hit. */
  readonly series: Map<string, Labels>;
}

export class TokenSeries {
  readonly #counter: Counter<TokenLabel>;
  readonly #opts: TokenSeriesOptions;
  readonly #tracked = new Map<string, Tracked>();
  readonly #overflow: Tracked = { lastSeen: 0, series: new Map() };
  #nextSweepAt: number;

  constructor(counter: Counter<TokenLabel>, opts: TokenSeriesOptions) {
    if (!(opts.maxTokens >= 1)) throw new Error("maxTokens must be at least 1");
    this.#counter = counter;
    this.#opts = opts;
    this.#nextSweepAt = opts.clock() + this.#sweepEveryMs();
  }

  /** Ids exported now under their own name (not counting `_overflow`). */
  get size(): number {
    return this.#tracked.size;
  }

  record(check: TokenCheck): void {
    const now = this.#opts.clock();
    if (now >= this.#nextSweepAt) this.sweep(now);
    let tracked = this.#tracked.get(check.id);
    if (tracked === undefined && this.#tracked.size >= this.#opts.maxTokens) {
      // Full: free the slots of idle ids first, so a burst of new ids never waits for a timer.
      this.sweep(now);
    }
    if (tracked === undefined && this.#tracked.size < this.#opts.maxTokens) {
      tracked = { lastSeen: now, series: new Map() };
      this.#tracked.set(check.id, tracked);
    }
    const target = tracked ?? this.#overflow;
    target.lastSeen = now;
    const key = `${check.decision}|${check.reason}|${check.scope}|${check.owner}`;
    let labels = target.series.get(key);
    if (labels === undefined) {
      labels = {
        token_id: tracked === undefined ? OVERFLOW_TOKEN_ID : check.id,
        scope: check.scope,
        // Owners are free text: under _overflow they would bring back the unbounded cardinality.
        owner: tracked === undefined ? "" : check.owner,
        decision: check.decision,
        reason: check.reason,
      };
      target.series.set(key, labels);
    }
    this.#counter.inc(labels);
  }

  sweepIfDue(): void {
    const now = this.#opts.clock();
    if (now >= this.#nextSweepAt) this.sweep(now);
  }

  /** Removes every id idle for longer than idleMs, each with every label set it had. */
  sweep(now: number = this.#opts.clock()): void {
    this.#nextSweepAt = now + this.#sweepEveryMs();
    const idleSince = now - this.#opts.idleMs;
    for (const [id, tracked] of this.#tracked) {
      if (tracked.lastSeen > idleSince) continue;
      for (const labels of tracked.series.values()) this.#counter.remove(labels);
      this.#tracked.delete(id);
    }
  }

  #sweepEveryMs(): number {
    return Math.max(1000, Math.min(this.#opts.idleMs / 4, 60_000));
  }
}
