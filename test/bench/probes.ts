// What h2load cannot see: decisions checked with a real gRPC client, revocation latency across
// three replicas, and memory with many distinct tokens.
import { setTimeout as sleep } from "node:timers/promises";
import { createCheckClient, type CheckClient } from "../../src/envoy/check-client.ts";
import { createRedisStore } from "../../src/store/redis-store.ts";
import { cpuSeconds, peakRssBytes, rssBytes } from "./procs.ts";
import { delta, scrape, startTokenscope, type Target } from "./targets.ts";
import { allowedRequest, benchToken, deniedRequest, DENY_REASONS, PREFIX } from "./workload.ts";

const GRPC_CODE: Record<string, number> = {
  unknown_token: 16,
  revoked: 16,
  malformed_token: 16,
  route_not_allowed: 7,
  namespace_mismatch: 7,
  store_unavailable: 14,
};

async function decision(client: CheckClient, request: object): Promise<string> {
  const res = await client.check(request, 5000);
  if (res.status?.code === 0 && res.ok_response) return "allow";
  const reason = res.status?.message ?? "?";
  return res.status?.code === GRPC_CODE[reason] && res.denied_response ? reason : `bad:${reason}`;
}

/**
 * A check's decision; a store_unavailable (the server failing closed when the store misses its
 * deadline under overload) is asked again, up to 5 times, each retry reported to `onRetry`.
 */
async function decisionPastOverload(
  client: CheckClient,
  request: object,
  onRetry: () => void = () => undefined,
): Promise<string> {
  let got = await decision(client, request);
  for (let retry = 0; got === "store_unavailable" && retry < 5; retry++) {
    onRetry();
    got = await decision(client, request);
  }
  return got;
}

/** `total` checks per target: 90% allowed tokens, 10% each deny reason in turn. */
export async function verifySample(
  targets: Target[],
  revokedFrom: number,
  distinct: number,
  total: number,
): Promise<{ ok: number; total: number; mismatches: string[] }> {
  let ok = 0;
  let n = 0;
  const mismatches: string[] = [];
  for (const target of targets) {
    const client = createCheckClient(`127.0.0.1:${target.grpcPort}`);
    for (let k = 0; k < total; k++) {
      const reason =
        k % 10 === 9 ? DENY_REASONS[Math.floor(k / 10) % DENY_REASONS.length] : undefined;
      const i = Math.floor(Math.random() * distinct);
      const request = reason === undefined ? allowedRequest(i) : deniedRequest(reason, revokedFrom);
      const want = reason ?? "allow";
      const got = await decision(client, request);
      n++;
      if (got === want) ok++;
      else mismatches.push(`${target.name}: wanted ${want}, got ${got}`);
    }
    client.close();
  }
  return { ok, total: n, mismatches: mismatches.slice(0, 20) };
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

export async function measureRevocation(opts: {
  dir: string;
  serveArgs: string[];
  redisUrl: string;
  firstToken: number;
  count: number;
  entry?: string;
  nodeArgs?: string[];
}) {
  const replicas: Target[] = [];
  const store = createRedisStore({
    url: opts.redisUrl,
    prefix: PREFIX,
    retentionMs: 3_600_000,
    deadlineMs: 1000,
  });
  try {
    for (let r = 0; r < 3; r++) {
      replicas.push(
        await startTokenscope({
          name: `replica-${r}`,
          dir: opts.dir,
          entry: opts.entry,
          nodeArgs: opts.nodeArgs,
          args: [...opts.serveArgs, "--workers=1"],
        }),
      );
    }
    const clients = replicas.map((t) => createCheckClient(`127.0.0.1:${t.grpcPort}`));
    const perReplica: number[] = [];
    const all: number[] = [];
    for (let k = 0; k < opts.count; k++) {
      const i = opts.firstToken + k;
      const request = allowedRequest(i);
      // Every replica has the token cached (allowed twice) before it is revoked.
      for (const c of clients) {
        for (let w = 0; w < 2; w++) {
          const got = await decisionPastOverload(c, request);
          if (got !== "allow") throw new Error(`token ${i} not allowed: ${got}`);
        }
      }
      const start = performance.now();
      const revoked = store.revoke(benchToken(i).id, Date.now());
      const seen = await Promise.all(
        clients.map(async (c) => {
          for (;;) {
            if ((await decision(c, request)) === "revoked") return performance.now() - start;
            if (performance.now() - start > 10_000)
              throw new Error(`token ${i} still allowed after 10 s`);
          }
        }),
      );
      await revoked;
      perReplica.push(...seen);
      all.push(Math.max(...seen));
    }
    for (const c of clients) c.close();
    return {
      count: opts.count,
      replicas: 3,
      p50Ms: quantile(perReplica, 0.5),
      p99Ms: quantile(perReplica, 0.99),
      allP50Ms: quantile(all, 0.5),
      allP99Ms: quantile(all, 0.99),
      maxMs: Math.max(...all),
    };
  } finally {
    for (const r of replicas) await r.stop();
    await store.close();
  }
}

/**
 * Checks `tokens` distinct allowed tokens twice, 64 in flight; RSS after. The cache TTL is raised
 * to a minute so that every token is in the cache at once: the worst case for memory.
 */
export async function measureHotTokenRss(opts: {
  dir: string;
  serveArgs: string[];
  tokens: number;
  root?: string;
  /** The image's compiled bin/tokenscope.js (compiled.ts) instead of the TypeScript sources. */
  entry?: string;
  /** Runs after the second pass, before the target stops (memory.ts: a heap snapshot). */
  afterPasses?: (target: Target) => Promise<void>;
  nodeArgs?: string[];
}) {
  const target = await startTokenscope({
    name: "hot",
    dir: opts.dir,
    root: opts.root,
    entry: opts.entry,
    nodeArgs: opts.nodeArgs,
    args: [...opts.serveArgs, "--workers=1", "--cache-ttl=60s"],
  });
  try {
    await sleep(500);
    const idleMB = rssBytes(target.pid) / 2 ** 20;
    const client = createCheckClient(`127.0.0.1:${target.grpcPort}`);
    let unavailable = 0;
    const pass = async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < opts.tokens) {
            const i = next++;
            const got = await decisionPastOverload(client, allowedRequest(i), () => unavailable++);
            if (got !== "allow") throw new Error(`token ${i}: ${got}`);
          }
        }),
      );
    };
    await pass();
    const before = await scrape(target);
    // The second pass's cost: all cache hits, so GC and the check path, not the store.
    const started = performance.now();
    const cpuBefore = cpuSeconds(target.pid);
    await pass();
    const cpu = cpuSeconds(target.pid) - cpuBefore;
    const seconds = (performance.now() - started) / 1000;
    const after = await scrape(target);
    client.close();
    const rssMB = rssBytes(target.pid) / 2 ** 20;
    const peakRssMB = peakRssBytes(target.pid) / 2 ** 20;
    const heapMB = await heapSpacesMB(target);
    await opts.afterPasses?.(target);
    return {
      tokens: opts.tokens,
      idleMB,
      rssMB,
      peakRssMB,
      heapMB,
      secondPassHits: (after["cache:hit"] ?? 0) - (before["cache:hit"] ?? 0),
      secondPassChecksPerSecond: opts.tokens / seconds,
      secondPassCpuUsPerCheck: (cpu / opts.tokens) * 1e6,
      secondPassCounts: delta(after, before),
      storeUnavailableRetries: unavailable,
    };
  } finally {
    await target.stop();
  }
}

/** V8 heap space sizes and use (MB) from the target's own nodejs_heap_space_* metrics. */
async function heapSpacesMB(target: Target): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${target.httpPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(
    /^nodejs_heap_space_size_(total|used)_bytes\{space="(\w+)"\} (\d+)/gm,
  )) {
    out[`${m[2] ?? ""}:${m[1] ?? ""}`] = Math.round(Number(m[3]) / 2 ** 20);
  }
  const external = /^nodejs_external_memory_bytes (\d+)/m.exec(text);
  if (external) out.external = Math.round(Number(external[1]) / 2 ** 20);
  return out;
}
