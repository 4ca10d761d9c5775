// tokenscope_token_checks_total (SPEC §6): one counter series per verified token id, decision and
// reason, with a hard cap on distinct ids and idle eviction that removes every series of an id.
//
// It is kept here rather than in a prom-client Counter because of the scrape: prom-client formats
// and escapes every label of every series on each scrape, which took ~100-200 ms of event-loop
// time for 10 000 tokens (test/bench/metrics-scrape.ts) — a stall of every Check in flight. Each
// series here renders its exposition prefix once, when it is created; a scrape only appends values.
import { Registry } from "prom-client";

export const OVERFLOW_TOKEN_ID = "_overflow";
export const TOKEN_CHECKS_METRIC = "tokenscope_token_checks_total";
const HELP = "Authorization decisions per verified token id (capped; see --metrics-max-tokens).";

export type TokenLabel = "token_id" | "scope" | "owner" | "decision" | "reason";
type Labels = Readonly<Record<TokenLabel, string>>;

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
  /** An id unseen for this long is removed with all its series. */
  readonly idleMs: number;
  readonly clock: () => number;
}

interface Series {
  readonly labels: Labels;
  /** `name{labels} `, escaped once. */
  readonly prefix: string;
  value: number;
}

interface Tracked {
  lastSeen: number;
  /**
   * decision|reason|scope|owner → series, for every series but the first: most ids only ever
   * have one outcome, and a Map costs more than that one series (about 180 bytes).
   */
  more: Map<string, Series> | undefined;
  /** The id's first series. */
  first: Series | undefined;
  /** The series counted last: a token's checks mostly repeat one outcome. */
  last: Series | undefined;
}

const newTracked = (now: number): Tracked => ({
  lastSeen: now,
  more: undefined,
  first: undefined,
  last: undefined,
});

/**
 * Strings kept for as long as an id is tracked are built with join(), which makes one flat
 * string: `+` and template literals make a tree of partial strings (32 bytes a node) that V8
 * keeps as it is until something reads it through.
 */
const seriesKey = (decision: string, reason: string, scope: string, owner: string) =>
  [decision, reason, scope, owner].join("|");

/** Whether `series` counts this outcome (owner: "" under _overflow). */
const isOutcome = (series: Series, check: TokenCheck, owner: string) =>
  series.labels.decision === check.decision &&
  series.labels.reason === check.reason &&
  series.labels.scope === check.scope &&
  series.labels.owner === owner;

/** Prometheus text format: backslash, double quote and newline are escaped in label values. */
function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function seriesOf(labels: Labels): Series {
  const text = (Object.keys(labels) as TokenLabel[])
    .map((k) => `${k}="${escapeLabel(labels[k])}"`)
    .join(",");
  return { labels, prefix: [TOKEN_CHECKS_METRIC, "{", text, "} "].join(""), value: 0 };
}

function* seriesIn(t: Tracked): Generator<Series> {
  if (t.first !== undefined) yield t.first;
  if (t.more !== undefined) yield* t.more.values();
}

export class TokenSeries {
  readonly #opts: TokenSeriesOptions;
  readonly #tracked = new Map<string, Tracked>();
  readonly #overflow: Tracked = newTracked(0);
  #nextSweepAt: number;
  /**
   * No tracked id can be idle before this: the oldest lastSeen at the last sweep, plus idleMs
   * (lastSeen only moves forward, so it never comes late). A full table with no idle id would
   * otherwise be swept, all of it, on every check of an id beyond the cap.
   */
  #noneIdleBefore = -Infinity;

  constructor(opts: TokenSeriesOptions) {
    if (!(opts.maxTokens >= 1)) throw new Error("maxTokens must be at least 1");
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
    if (
      tracked === undefined &&
      this.#tracked.size >= this.#opts.maxTokens &&
      now >= this.#noneIdleBefore
    ) {
      // Full: free the slots of idle ids first, so a burst of new ids never waits for a timer.
      this.sweep(now);
    }
    if (tracked === undefined && this.#tracked.size < this.#opts.maxTokens) {
      tracked = newTracked(now);
      this.#tracked.set(check.id, tracked);
    }
    const target = tracked ?? this.#overflow;
    target.lastSeen = now;
    // Under _overflow the owner is not a label: ids of different owners share one series.
    const owner = tracked === undefined ? "" : check.owner;
    const last = target.last;
    if (last !== undefined && isOutcome(last, check, owner)) {
      last.value++;
      return;
    }
    const first = target.first;
    let series: Series | undefined;
    // The key of a series beyond the first (kept in `more`); none while there is no first.
    let key: string | undefined;
    if (first !== undefined && isOutcome(first, check, owner)) series = first;
    else if (first !== undefined) {
      key = seriesKey(check.decision, check.reason, check.scope, owner);
      series = target.more?.get(key);
    }
    if (series === undefined) {
      series = seriesOf({
        token_id: tracked === undefined ? OVERFLOW_TOKEN_ID : check.id,
        scope: check.scope,
        // Owners are free text: under _overflow they would bring back the unbounded cardinality.
        owner,
        decision: check.decision,
        reason: check.reason,
      });
      if (key === undefined) target.first = series;
      else (target.more ??= new Map()).set(key, series);
    }
    target.last = series;
    series.value++;
  }

  sweepIfDue(): void {
    const now = this.#opts.clock();
    if (now >= this.#nextSweepAt) this.sweep(now);
  }

  /** Removes every id idle for longer than idleMs, with every series it had. */
  sweep(now: number = this.#opts.clock()): void {
    this.#nextSweepAt = now + this.#sweepEveryMs();
    const idleSince = now - this.#opts.idleMs;
    // Ids tracked after this sweep are seen from now on.
    let oldest = now;
    this.#tracked.forEach((tracked, id) => {
      if (tracked.lastSeen <= idleSince) this.#tracked.delete(id);
      else if (tracked.lastSeen < oldest) oldest = tracked.lastSeen;
    });
    this.#noneIdleBefore = oldest + this.#opts.idleMs;
  }

  *series(): Generator<Series> {
    for (const tracked of this.#tracked.values()) yield* seriesIn(tracked);
    yield* seriesIn(this.#overflow);
  }

  /** The metric family in the Prometheus text format. A scrape also sweeps, when due. */
  exposition(): string {
    this.sweepIfDue();
    const lines = [
      `# HELP ${TOKEN_CHECKS_METRIC} ${HELP}`,
      `# TYPE ${TOKEN_CHECKS_METRIC} counter`,
    ];
    for (const s of this.series()) lines.push(s.prefix + String(s.value));
    return lines.join("\n");
  }

  reset(): void {
    this.#tracked.clear();
    this.#overflow.first = undefined;
    this.#overflow.more = undefined;
    this.#overflow.last = undefined;
    this.#noneIdleBefore = -Infinity;
  }

  #sweepEveryMs(): number {
    return Math.max(1000, Math.min(this.#opts.idleMs / 4, 60_000));
  }
}

/** The per-token series as a registry member: JSON and registry listings see it like any metric. */
export function tokenChecksMetric(series: TokenSeries) {
  return {
    name: TOKEN_CHECKS_METRIC,
    help: HELP,
    type: "counter" as const,
    aggregator: "sum" as const,
    get() {
      const values = [...series.series()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
      return Promise.resolve({
        name: TOKEN_CHECKS_METRIC,
        help: HELP,
        type: "counter",
        aggregator: "sum",
        values,
      });
    },
    reset: () => series.reset(),
  };
}

/**
 * A prom-client Registry that lets the per-token family render itself. prom-client's metrics()
 * calls getMetricsAsString for each member (prom-client 15, lib/registry.js); the override takes
 * over only for that one family.
 */
export class TokenscopeRegistry extends Registry {
  #tokenSeries: TokenSeries | undefined;

  attachTokenSeries(series: TokenSeries): void {
    this.#tokenSeries = series;
    this.registerMetric(
      tokenChecksMetric(series) as unknown as Parameters<Registry["registerMetric"]>[0],
    );
  }

  getMetricsAsString(metric: { name: string }): Promise<string> {
    if (metric.name === TOKEN_CHECKS_METRIC && this.#tokenSeries !== undefined) {
      return Promise.resolve(this.#tokenSeries.exposition());
    }
    const base = Registry.prototype as unknown as {
      getMetricsAsString(this: Registry, m: unknown): Promise<string>;
    };
    return base.getMetricsAsString.call(this, metric);
  }
}
