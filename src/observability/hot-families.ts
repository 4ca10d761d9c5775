// A counter and a histogram for the Check path, as prom-client registry members. prom-client's own
// Counter and Histogram hash their label object on every inc/observe (sort the names, join the
// values, validate), a child from labels() included: about 1.5 µs of a 10 µs Check in a profile.
// Here a Check finds its series by one string key in a Map; the labels are kept as an object for
// the scrape, which prom-client renders from get() like any of its own metrics (and the cluster
// primary sums across workers by the same get()).
type Labels = Readonly<Record<string, string>>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** What prom-client's Registry expects of a member (prom-client 15, lib/registry.js). */
export interface RegistryMember {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "histogram";
  readonly aggregator: "sum";
  get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: MetricValue[];
  }>;
  reset(): void;
}

export class HotCounter {
  readonly #cells = new Map<string, { labels: Labels; value: number }>();
  readonly #names: readonly string[];
  readonly member: RegistryMember;

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.#names = labelNames;
    const cells = this.#cells;
    this.member = {
      name,
      help,
      type: "counter",
      aggregator: "sum",
      get: () =>
        Promise.resolve({
          name,
          help,
          type: "counter",
          aggregator: "sum",
          values: [...cells.values()].map((c) => ({ labels: c.labels, value: c.value })),
        }),
      reset: () => cells.clear(),
    };
  }

  /** Adds one to the series of these label values (in labelNames order). */
  inc(values: readonly string[]): void {
    // NUL-joined (n values, n-1 NULs). A value holding a NUL itself (none does today) gets its
    // key from JSON, which escapes NULs, behind n NULs: the two kinds of key never meet.
    const key = values.some((v) => v.includes("\u0000"))
      ? "\u0000".repeat(values.length) + JSON.stringify(values)
      : values.join("\u0000");
    const cell = this.#cells.get(key);
    if (cell !== undefined) {
      cell.value++;
      return;
    }
    const labels: Record<string, string> = {};
    this.#names.forEach((n, i) => (labels[n] = values[i] ?? ""));
    this.#cells.set(key, { labels, value: 1 });
  }
}

interface HistogramCell {
  readonly labels: Labels;
  /** Observations per bucket, not cumulative; the last slot is above the highest bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

export class HotHistogram {
  readonly #cells = new Map<string, HistogramCell>();
  readonly #bounds: readonly number[];
  readonly #labelName: string;
  readonly member: RegistryMember;

  constructor(name: string, help: string, labelName: string, bounds: readonly number[]) {
    this.#bounds = [...bounds].sort((a, b) => a - b);
    this.#labelName = labelName;
    const cells = this.#cells;
    const sorted = this.#bounds;
    const render = (cell: HistogramCell): MetricValue[] => {
      const out: MetricValue[] = [];
      let cumulative = 0;
      sorted.forEach((bound, i) => {
        cumulative += cell.counts[i] ?? 0;
        out.push({
          labels: { le: String(bound), ...cell.labels },
          value: cumulative,
          metricName: `${name}_bucket`,
        });
      });
      out.push({
        labels: { le: "+Inf", ...cell.labels },
        value: cell.count,
        metricName: `${name}_bucket`,
      });
      out.push({ labels: cell.labels, value: cell.sum, metricName: `${name}_sum` });
      out.push({ labels: cell.labels, value: cell.count, metricName: `${name}_count` });
      return out;
    };
    this.member = {
      name,
      help,
      type: "histogram",
      aggregator: "sum",
      get: () =>
        Promise.resolve({
          name,
          help,
          type: "histogram",
          aggregator: "sum",
          values: [...cells.values()].flatMap(render),
        }),
      reset: () => cells.clear(),
    };
  }

  observe(labelValue: string, value: number): void {
    let cell = this.#cells.get(labelValue);
    if (cell === undefined) {
      cell = {
        labels: { [this.#labelName]: labelValue },
        counts: new Array<number>(this.#bounds.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.#cells.set(labelValue, cell);
    }
    let i = 0;
    while (i < this.#bounds.length && value > (this.#bounds[i] as number)) i++;
    cell.counts[i] = (cell.counts[i] ?? 0) + 1;
    cell.sum += value;
    cell.count++;
  }
}
