// `node test/bench/steps.ts`: what one Check costs tokenscope's own code, step by step, in one
// process with no gRPC in the way — beside what decoding the same request costs grpc-js' usual
// proto-loader path (the work the bench's baseline does for every Check before its empty handler).
// The request bodies, tokens and scopes are the bench's (workload.ts); the store is a real
// redis-server with the token cache in front, as `serve` runs it. Each step is timed over many
// iterations and printed as µs per Check; the sum is the floor of what tokenscope adds per Check
// over an empty grpc-js server, whatever is done about grpc-js itself.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openBackends } from "../../src/backends.ts";
import { createCheckService } from "../../src/check/check-service.ts";
import { serveConfig } from "../../src/config.ts";
import { decide, readCredential, isDecision, type Decision } from "../../src/domain/decide.ts";
import { readCheckRequestFields } from "../../src/envoy/check-request-wire.ts";
import { encodeCheckResponse } from "../../src/envoy/check-response-wire.ts";
import {
  checkViewOf,
  fromCheckRequest,
  type CheckView,
} from "../../src/envoy/from-check-request.ts";
import { checkMethod } from "../../src/envoy/protos.ts";
import { toCheckResponse } from "../../src/envoy/to-check-response.ts";
import { readHmacKey } from "../../src/hmac-key.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { withTokenCache } from "../../src/store/token-cache.ts";
import { UsageRecorder } from "../../src/tokens/usage-recorder.ts";
import { startRedis } from "../harness/redis.ts";
import { writeHmacKey } from "../harness/server.ts";
import { allowedRequest, ENVIRONMENT, seedTokens, serveArgsFor, writeScopes } from "./workload.ts";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "200000" },
    /** Only the steps whose name contains this (e.g. "whole", to profile one step). */
    only: { type: "string", default: "" },
  },
});
const N = Number(values.iterations);
const TOKENS = 1000;
const CHECK = checkMethod();

/** µs per call of `fn` over N calls (after a warm-up of N/10), cycling through `inputs`. */
function time<T>(inputs: readonly T[], fn: (input: T) => unknown): number {
  let sink = 0;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) if (fn(inputs[i % inputs.length] as T) !== undefined) sink++;
  };
  run(N / 10);
  const start = performance.now();
  run(N);
  const us = ((performance.now() - start) * 1000) / N;
  return sink < 0 ? NaN : us;
}

async function timeAsync<T>(inputs: readonly T[], fn: (input: T) => Promise<unknown>) {
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) await fn(inputs[i % inputs.length] as T);
  };
  await run(N / 10);
  const start = performance.now();
  await run(N);
  return ((performance.now() - start) * 1000) / N;
}

/**
 * This process's CPU µs per call of `fn`, 64 calls in flight at a time: for a step that waits on
 * Redis, where the wall time would be the round trip, not the work.
 */
async function cpuPerCall<T>(inputs: readonly T[], fn: (input: T) => Promise<unknown>) {
  const calls = Math.max(1000, Math.round(N / 20));
  const run = async (n: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < n) await fn(inputs[next++ % inputs.length] as T);
      }),
    );
  };
  await run(calls / 10);
  const start = process.cpuUsage();
  await run(calls);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

const dir = mkdtempSync(join(tmpdir(), "tokenscope-steps-"));
const redis = await startRedis();
try {
  const keyFile = writeHmacKey(dir);
  const key = readHmacKey(keyFile);
  await seedTokens({ port: redis.port, key, count: TOKENS, revokedFrom: TOKENS });
  const config = serveConfig(
    [...serveArgsFor(redis.url, keyFile, writeScopes(join(dir, "scopes"))), "--cache-ttl=60s"],
    {},
  );
  // Audit lines go to memory and are dropped: the write(2) itself is the kernel's cost, not ours.
  let auditBytes = 0;
  const logger = createLogger({ level: "info", write: (line) => (auditBytes += line.length) });
  const metrics = createMetrics();
  const backends = await openBackends(config, logger, { waitForStoreMs: 3000 });
  const cache = withTokenCache(backends.store, {
    redisUrl: config.redisUrl,
    redisPrefix: config.redisPrefix,
    ...config.cache,
    onLookup: (result) => metrics.cacheLookup(result),
    onError: (op, err) => logger.log("warn", "token cache feed", { op, err: String(err) }),
  });
  const usage = new UsageRecorder({ store: backends.store, logger, intervalMs: 60_000 });
  const check = createCheckService({
    environment: config.environment,
    serverNamespace: config.namespace,
    hmacKey: backends.hmacKey,
    store: cache.store,
    scopes: backends.scopes,
    metrics,
    logger,
    clock: Date.now,
    auditAllowSample: config.auditAllowSample,
    usage,
  });

  const bodies = Array.from({ length: TOKENS }, (_, i) =>
    CHECK.requestSerialize(allowedRequest(i)),
  );
  const views: CheckView[] = bodies.map((b) => checkViewOf(readCheckRequestFields(b)));
  // Every token read once, so that the cache holds them all (the feed subscribes first).
  for (let tries = 0; ; tries++) {
    for (const v of views) await check(v);
    const hits = (await metrics.registry.getSingleMetricAsString("tokenscope_cache_lookups_total"))
      .split("\n")
      .find((l) => l.includes('result="hit"'));
    if ((hits !== undefined && !hits.endsWith(" 0")) || tries > 50) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const decisions: Decision[] = [];
  for (const v of views) decisions.push((await check(v)).decision);
  if (!decisions.every((d) => d.allowed)) throw new Error("the bench's tokens are not all allowed");

  const credentials = views.map((v) => {
    const c = readCredential(v.authorization, ENVIRONMENT);
    if (isDecision(c)) throw new Error(`credential: ${c.reason}`);
    return c;
  });
  const decideInputs = await Promise.all(
    views.map(async (v, i) => {
      const token = credentials[i];
      const record = token && (await cache.store.get(token.id));
      if (!token || !record) throw new Error(`token ${i} not found`);
      return {
        token,
        lookup: { found: true as const, record },
        hmacKey: backends.hmacKey,
        now: Date.now(),
        scope: backends.scopes.get(record.scope),
        namespace: "bench",
        route: v.route,
        source: v.source,
      };
    }),
  );
  const steps: [string, () => number | Promise<number>][] = [
    [
      "decode, proto-loader (baseline pays this)",
      () => time(bodies, (b) => fromCheckRequest(CHECK.requestDeserialize(b))),
    ],
    [
      "decode, wire reader (tokenscope)",
      () => time(bodies, (b) => checkViewOf(readCheckRequestFields(b))),
    ],
    [
      "credential: bearer, format, checksum",
      () => time(views, (v) => readCredential(v.authorization, ENVIRONMENT)),
    ],
    ["cache hit (await)", () => timeAsync(credentials, (c) => cache.store.get(c.id))],
    [
      "cache miss: Redis GET, record decoded (CPU, 64 in flight)",
      () => cpuPerCall(credentials, (c) => backends.store.get(c.id)),
    ],
    ["decide: HMAC of the secret, state, scope rules", () => time(decideInputs, (d) => decide(d))],
    [
      "metrics: counter, histogram, per-token series",
      () => time(decisions, (d) => metrics.recordCheck(d, "bench", 0.0001)),
    ],
    [
      "audit line (JSON, to memory)",
      () =>
        time(views, (v) =>
          logger.audit({
            event: "check",
            decision: "allow",
            reason: "ok",
            method: v.route.method,
            host: v.route.host,
            path: v.route.path,
            source: v.source.address,
          }),
        ),
    ],
    [
      "response, proto-loader encode (baseline-style)",
      () => time(decisions, (d) => CHECK.responseSerialize(toCheckResponse(d))),
    ],
    [
      "response, hand encoder (tokenscope)",
      () => time(decisions, (d) => encodeCheckResponse(toCheckResponse(d))),
    ],
    ["whole Check, cache hit (await, in process)", () => timeAsync(views, (v) => check(v))],
  ];
  const rows: [string, number][] = [];
  for (const [name, measure] of steps) {
    if (name.includes(values.only)) rows.push([name, await measure()]);
  }
  const width = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`# ${N} iterations per step, ${TOKENS} tokens, all cached\n`);
  for (const [name, us] of rows)
    process.stdout.write(`${name.padEnd(width)}  ${us.toFixed(2)} µs\n`);
  process.stdout.write(`# audit text produced: ${(auditBytes / 2 ** 20).toFixed(0)} MiB\n`);
  await cache.close();
  await backends.close();
} finally {
  await redis.stop();
}
