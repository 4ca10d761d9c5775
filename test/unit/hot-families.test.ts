// The Check path's counter and histogram (src/observability/hot-families.ts) must read exactly as
// prom-client's own Counter and Histogram would, fed the same observations: in the text a scrape
// returns, and summed across workers the way the cluster primary sums them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AggregatorRegistry, Counter, Histogram, Registry } from "prom-client";
import { HotCounter, HotHistogram } from "../../src/observability/hot-families.ts";
import { int, pick, seededRng } from "../fuzz/generators.ts";

const BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const LABELS = ["decision", "reason", "namespace", "scope"] as const;

type Member = Parameters<Registry["registerMetric"]>[0];

/** One worker's registries: prom-client's families beside the hot ones, fed the same. */
function worker(seed: number) {
  const rng = seededRng(seed);
  const reference = new Registry();
  const hot = new Registry();
  const counter = new Counter({
    name: "c_total",
    help: "h",
    labelNames: LABELS,
    registers: [reference],
  });
  const histogram = new Histogram({
    name: "d_seconds",
    help: "h",
    labelNames: ["decision"],
    buckets: BOUNDS,
    registers: [reference],
  });
  const hotCounter = new HotCounter("c_total", "h", LABELS);
  const hotHistogram = new HotHistogram("d_seconds", "h", "decision", BOUNDS);
  hot.registerMetric(hotCounter.member as unknown as Member);
  hot.registerMetric(hotHistogram.member as unknown as Member);
  for (let i = 0; i < 5000; i++) {
    const decision = pick(rng, ["allow", "deny", "dry_run_deny"]);
    const values = [
      decision,
      pick(rng, ["ok", "revoked", "unknown_token"]),
      pick(rng, ["prod", "", "_other"]),
      pick(rng, ["prod/a", "prod/b", ""]),
    ];
    counter.inc(Object.fromEntries(LABELS.map((n, k) => [n, values[k] ?? ""])));
    hotCounter.inc(values);
    // Bounds themselves included: a value equal to a bound falls in that bucket (le).
    const seconds = int(rng, 4) === 0 ? pick(rng, BOUNDS) : rng() * 0.3;
    histogram.observe({ decision }, seconds);
    hotHistogram.observe(decision, seconds);
  }
  return { reference, hot };
}

const sortedLines = (text: string) => text.split("\n").sort();

describe("the Check path's metric families", () => {
  it("scrape as prom-client's Counter and Histogram would", async () => {
    const { reference, hot } = worker(7);
    assert.deepEqual(sortedLines(await hot.metrics()), sortedLines(await reference.metrics()));
  });

  it("sum across workers as prom-client's do", async () => {
    const workers = [worker(1), worker(2), worker(3)];
    const sum = async (pickRegistry: (w: (typeof workers)[number]) => Registry) =>
      (
        await AggregatorRegistry.aggregate(
          await Promise.all(workers.map((w) => pickRegistry(w).getMetricsAsJSON())),
        ).metrics()
      )
        .split("\n")
        .sort();
    assert.deepEqual(await sum((w) => w.hot), await sum((w) => w.reference));
  });

  it("label values holding a NUL keep their own series", async () => {
    const registry = new Registry();
    const counter = new HotCounter("n_total", "h", ["a", "b"]);
    registry.registerMetric(counter.member as unknown as Member);
    counter.inc(["x\u0000y", "z"]);
    counter.inc(["x", "y\u0000z"]);
    counter.inc(["x", "y\u0000z"]);
    const values = (await counter.member.get()).values.map((v) => [
      v.labels.a,
      v.labels.b,
      v.value,
    ]);
    assert.deepEqual(values, [
      ["x\u0000y", "z", 1],
      ["x", "y\u0000z", 2],
    ]);
  });

  it("reset empties every series", async () => {
    const { hot } = worker(9);
    hot.resetMetrics();
    assert.doesNotMatch(await hot.metrics(), /^c_total\{|^d_seconds_bucket\{/m);
  });
});
