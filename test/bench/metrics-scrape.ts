// Benchmark: what the per-token table costs. Prints the /metrics scrape time (over the real ops
// HTTP server) and the per-check recording time with 0 (the baseline), 1 000 and 10 000 exported
// tokens, side by side. Run: node test/bench/metrics-scrape.ts
import { createMetrics } from "../../src/observability/metrics.ts";
import { startOpsServer } from "../../src/observability/ops-server.ts";
import type { Decision } from "../../src/domain/decide.ts";
import { Counter, Registry } from "prom-client";

const SCRAPES = 20;
const RECORDS = 200_000;

function decisions(tokens: number): Decision[] {
  const out: Decision[] = [];
  for (let i = 0; i < Math.max(tokens, 1); i++) {
    const token = {
      id: `tok${String(i).padStart(9, "0")}`,
      scope: `prod/scope-${i % 50}`,
      owner: `team-${i % 200}`,
    };
    if (tokens === 0) {
      out.push({ allowed: false, reason: "missing_token" });
      break;
    }
    out.push({ allowed: true, reason: "ok", token, scopeNamespace: "prod" });
    out.push({ allowed: false, reason: "route_not_allowed", token, scopeNamespace: "prod" });
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function measure(tokens: number) {
  const metrics = createMetrics({ maxTokens: 10_000 });
  const all = decisions(tokens);
  const t0 = performance.now();
  for (let i = 0; i < RECORDS; i++)
    metrics.recordCheck(all[i % all.length] as Decision, "prod", 0.0002);
  const recordNs = ((performance.now() - t0) * 1e6) / RECORDS;
  return {
    tokens,
    series: metrics.tokenSeries.size,
    recordNs,
    ...(await timeScrapes(metrics.registry)),
  };
}

/** Median time of SCRAPES scrapes of `registry` over the ops server, and the body's size. */
async function timeScrapes(registry: Registry) {
  const ops = await startOpsServer({
    host: "127.0.0.1",
    port: 0,
    registry,
    readiness: { ready: () => true, reasons: () => [] },
  });
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) {
    const start = performance.now();
    const body = await (await fetch(`http://127.0.0.1:${ops.port}/metrics`)).text();
    times.push(performance.now() - start);
    bytes = body.length;
  }
  await ops.close();
  return { scrapeMs: median(times), bytes };
}

/** The same 10 000 tokens' series in a plain prom-client Counter: the design this replaced. */
async function measurePlainCounter(tokens: number) {
  const registry = new Registry();
  const counter = new Counter({
    name: "tokenscope_token_checks_total",
    help: "per token",
    labelNames: ["token_id", "scope", "owner", "decision", "reason"] as const,
    registers: [registry],
  });
  const all = decisions(tokens);
  const labels = all.map((d) => ({
    token_id: d.token?.id ?? "",
    scope: d.token?.scope ?? "",
    owner: d.token?.owner ?? "",
    decision: d.allowed ? "allow" : "deny",
    reason: d.reason,
  }));
  const t0 = performance.now();
  for (let i = 0; i < RECORDS; i++) counter.inc(labels[i % labels.length] ?? {});
  const recordNs = ((performance.now() - t0) * 1e6) / RECORDS;
  return { tokens, series: -1, recordNs, ...(await timeScrapes(registry)) };
}

const rows = [];
for (const n of [0, 1000, 10_000]) rows.push(await measure(n));
rows.push(await measurePlainCounter(10_000));
console.log(
  `per-token metrics, ${SCRAPES} scrapes each (median), ${RECORDS} recordCheck calls each`,
);
console.log("tokens exported   /metrics scrape   body size   recordCheck");
for (const r of rows) {
  const label =
    r.tokens === 0 ? "0 (baseline)" : r.series < 0 ? `${r.tokens} prom-client` : String(r.series);
  console.log(
    `${label.padEnd(17)} ${`${r.scrapeMs.toFixed(1)} ms`.padEnd(17)} ${`${(r.bytes / 1024).toFixed(0)} KiB`.padEnd(11)} ${r.recordNs.toFixed(0)} ns/call${r.series < 0 ? " (counter.inc only)" : ""}`,
  );
}
