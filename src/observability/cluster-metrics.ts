// `serve --workers N`: one scrape of the primary's /metrics sees every worker. prom-client's
// AggregatorRegistry asks each worker over the cluster IPC channel for its registry and sums
// counters and histograms (gauges by their own aggregator).
import { AggregatorRegistry, Gauge, Registry } from "prom-client";

/** In a worker: answer the primary's metric requests from this registry. */
export function exposeToPrimary(registry: Registry): void {
  // prom-client installs a worker's IPC listener only when an AggregatorRegistry is constructed.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
}

export interface ClusterMetricsView extends Pick<Registry, "metrics" | "contentType"> {
  setWorkers(state: "ready" | "not_ready", count: number): void;
}

/** In the primary: the workers' metrics, aggregated, plus the primary's own worker gauge. */
export function clusterMetricsView(): ClusterMetricsView {
  const aggregator = new AggregatorRegistry();
  const own = new Registry();
  const workers = new Gauge({
    name: "tokenscope_workers",
    help: "Worker processes of serve --workers, by readiness.",
    labelNames: ["state"] as const,
    registers: [own],
  });
  return {
    async metrics() {
      const [fromWorkers, mine] = await Promise.all([aggregator.clusterMetrics(), own.metrics()]);
      return fromWorkers + mine;
    },
    contentType: own.contentType,
    setWorkers(state, count) {
      workers.set({ state }, count);
    },
  };
}
