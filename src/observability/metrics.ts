// prom-client on a private registry. Metric names are the dashboards' contract (SPEC §6).
import { Counter, Registry, collectDefaultMetrics } from "prom-client";
import { HotCounter, HotHistogram } from "./hot-families.ts";
import type { Decision } from "../domain/decide.ts";
import { TokenSeries, TokenscopeRegistry } from "./token-metrics.ts";

export type DecisionLabel = "allow" | "deny" | "dry_run_deny";

export function decisionLabel(decision: Decision): DecisionLabel {
  if (!decision.allowed) return "deny";
  return decision.dryRunDeny ? "dry_run_deny" : "allow";
}

export interface Metrics {
  readonly registry: Registry;
  recordCheck(decision: Decision, namespace: string | undefined, seconds: number): void;
  storeError(op: string): void;
  cacheLookup(result: CacheLookupResult): void;
  kubeWatchRestart(reason: string): void;
  /** The per-token series (SPEC §6 tokenscope_token_checks_total), for sweeps and tests. */
  readonly tokenSeries: TokenSeries;
}

export type CacheLookupResult = "hit" | "miss" | "negative_hit" | "bypass";

export interface MetricsOptions {
  /** --metrics-max-tokens: distinct token ids exported before `_overflow` (default 10000). */
  readonly maxTokens?: number;
  /** --metrics-token-idle: an id unseen this long leaves the exposition (default 1h). */
  readonly tokenIdleMs?: number;
  readonly clock?: () => number;
}

/** Store operations reported as 0 from the start, so rates and alerts have a series to read. */
const STORE_OPS = ["get", "create", "rotate", "revoke", "list", "ping", "usage", "audit"];

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  // A prom-client Registry whose per-token family renders cheaply (see token-metrics.ts).
  const registry = new TokenscopeRegistry();
  collectDefaultMetrics({ register: registry });
  // The two families every Check touches: see hot-families.ts.
  const checks = new HotCounter(
    "tokenscope_checks_total",
    "Authorization decisions, by decision, reason, destination namespace and scope.",
    ["decision", "reason", "namespace", "scope"],
  );
  const duration = new HotHistogram(
    "tokenscope_check_duration_seconds",
    "Server-side decision time.",
    "decision",
    // Sub-millisecond resolution: a check is expected to cost well under 1 ms.
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  );
  for (const family of [checks, duration]) {
    registry.registerMetric(family.member as unknown as Parameters<Registry["registerMetric"]>[0]);
  }
  const storeErrors = new Counter({
    name: "tokenscope_store_errors_total",
    help: "Token store operations that failed or missed their deadline.",
    labelNames: ["op"] as const,
    registers: [registry],
  });
  // On every Check as well (see hot-families.ts).
  const cacheLookups = new HotCounter(
    "tokenscope_cache_lookups_total",
    "Token record lookups by the in-process cache: hit, miss, negative_hit, or bypass (cache off or its invalidation feed down).",
    ["result"],
  );
  registry.registerMetric(
    cacheLookups.member as unknown as Parameters<Registry["registerMetric"]>[0],
  );
  const cacheLookupValues = {
    hit: ["hit"],
    miss: ["miss"],
    negative_hit: ["negative_hit"],
    bypass: ["bypass"],
  };
  const kubeWatchRestarts = new Counter({
    name: "tokenscope_kube_watch_restarts_total",
    help: "TokenScope watches started again after the previous one ended, by why it ended.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  for (const op of STORE_OPS) storeErrors.inc({ op }, 0);
  // The watch's restart reasons (src/kube/watch-attempt.ts), at 0 from the start for the same reason.
  for (const reason of ["closed", "error", "expired", "watchdog", "handler_error"]) {
    kubeWatchRestarts.inc({ reason }, 0);
  }
  const tokenSeries = new TokenSeries({
    maxTokens: opts.maxTokens ?? 10_000,
    idleMs: opts.tokenIdleMs ?? 3_600_000,
    clock: opts.clock ?? Date.now,
  });
  registry.attachTokenSeries(tokenSeries);
  return {
    registry,
    tokenSeries,
    recordCheck(decision, namespace, seconds) {
      const label = decisionLabel(decision);
      const reason = decision.dryRunDeny ?? decision.reason;
      checks.inc([label, reason, namespace ?? "", decision.token?.scope ?? ""]);
      duration.observe(label, seconds);
      // Only a verified secret names a token: garbage ids never reach the per-token table.
      if (decision.token !== undefined) {
        tokenSeries.record({ ...decision.token, decision: label, reason });
      }
    },
    storeError(op) {
      storeErrors.inc({ op });
    },
    cacheLookup(result) {
      cacheLookups.inc(cacheLookupValues[result]);
    },
    kubeWatchRestart(reason) {
      kubeWatchRestarts.inc({ reason });
    },
  };
}
