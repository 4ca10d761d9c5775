// Benchmark of the HTTP authorization server under h2load (HTTP/1.1, keep-alive, loopback),
// side by side with its baseline in the same run: an empty node:http server answering 200 with
// the same headers. Targets: an nginx-dialect allow; the same through a rate-limited scope (one
// more Redis round trip, the limit set high enough to allow all); a deny (missing token).
// Run: npm run bench:http-authz -- [seconds=5] [connections=16]
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startRedis } from "../harness/redis.ts";
import { openServerBackends, startTestServer } from "../harness/server.ts";

const run = promisify(execFile);
const SECONDS = Number(process.argv[2] ?? 5);
const CONNECTIONS = Number(process.argv[3] ?? 16);
const SCOPES = new URL("../fixtures/http-authz/scopes.yaml", import.meta.url).pathname;

interface Result {
  readonly name: string;
  readonly requests: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly statuses: string;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

async function load(name: string, url: string, headers: string[]): Promise<Result> {
  const log = join(tmpdir(), `tokenscope-bench-${process.pid}-${name.replace(/\W/g, "")}.log`);
  rmSync(log, { force: true });
  const args = [url, "--h1", "-c", String(CONNECTIONS), "-t", "1", "-D", String(SECONDS)];
  args.push("--warm-up-time=1", `--log-file=${log}`);
  for (const h of headers) args.push("-H", h);
  const { stdout } = await run("h2load", args, { maxBuffer: 1 << 22 });
  const lines = readFileSync(log, "utf8").trim().split("\n");
  rmSync(log, { force: true });
  // Log columns: start time (µs), status, duration (µs).
  const statuses = new Map<string, number>();
  const micros = lines.map((line) => {
    const [, status = "?", duration = "0"] = line.split("\t");
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    return Number(duration);
  });
  micros.sort((a, b) => a - b);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? NaN);
  return {
    name,
    requests: micros.length,
    rps,
    p50: percentile(micros, 0.5) / 1000,
    p99: percentile(micros, 0.99) / 1000,
    statuses: [...statuses].map(([s, n]) => `${s}×${n}`).join(" "),
  };
}

const redis = await startRedis();
const server = await startTestServer({
  redisUrl: redis.url,
  scopes: SCOPES,
  extraArgs: ["--http-authz-addr=127.0.0.1:0", "--audit-allow-sample=0"],
});
const backends = await openServerBackends(server);
const issue = async (scope: string) =>
  (await backends.tokens.issue({ scope, owner: "bench", labels: {}, createdBy: "bench" })).token;
const plain = await issue("prod/reports-read");
const baseline = createServer((_req, res) => {
  res.writeHead(200, {
    "cache-control": "no-store",
    "x-tokenscope-token-id": "AAAAAAAAAAAA",
    "x-tokenscope-scope": "prod/reports-read",
    "x-tokenscope-owner": "bench",
    "content-length": "0",
  });
  res.end();
});
await new Promise<void>((resolve) => baseline.listen(0, "127.0.0.1", resolve));
const basePort = (baseline.address() as AddressInfo).port;
const authz = `http://127.0.0.1:${server.httpAuthzPort ?? 0}/nginx/ns/prod`;
const original = [
  "x-original-method: GET",
  "x-original-uri: /v1/reports/2026",
  "x-original-host: reports.prod.svc.cluster.local",
];
// prod/metered allows 50/s: under this load nearly every answer is a 429, which costs the same
// record lookup plus the rate script's round trip as an allow under the limit would.
const metered = await issue("prod/metered");

const results: Result[] = [];
results.push(await load("baseline: empty node:http 200", `http://127.0.0.1:${basePort}/`, []));
results.push(
  await load("tokenscope nginx allow", authz, [`authorization: Bearer ${plain}`, ...original]),
);
results.push(
  await load("tokenscope nginx, rate-limited scope", authz, [
    `authorization: Bearer ${metered}`,
    ...original,
  ]),
);
results.push(await load("tokenscope nginx deny (no token)", authz, original));

console.log(
  `\nHTTP authorization, h2load --h1 -c ${CONNECTIONS} for ${SECONDS} s on loopback (shared 2-core machine)`,
);
console.log(
  [
    "target".padEnd(40),
    "req/s".padStart(9),
    "p50 ms".padStart(8),
    "p99 ms".padStart(8),
    "  statuses",
  ].join(""),
);
for (const r of results) {
  console.log(
    [
      r.name.padEnd(40),
      r.rps.toFixed(0).padStart(9),
      r.p50.toFixed(2).padStart(8),
      r.p99.toFixed(2).padStart(8),
      `  ${r.statuses}`,
    ].join(""),
  );
}

baseline.close();
await backends.close();
await server.stop();
await redis.stop();
