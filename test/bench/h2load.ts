// One h2load run (Debian nghttp2-client) of gRPC Checks, and its latency percentiles from the
// per-request log (h2load itself prints only min/max/mean/sd).
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import { pinnedCommand } from "./pinning.ts";

const run = promisify(execFile);

export interface LoadSpec {
  readonly port: number;
  readonly bodyFile: string;
  /** Connections, and concurrent streams on each: concurrency = clients × streams. */
  readonly clients: number;
  readonly streams: number;
  readonly durationS: number;
  readonly warmUpS: number;
  /** Open loop: requests per second per connection (h2load --rps). */
  readonly rpsPerClient?: number;
  readonly logFile: string;
  /** The CPUs to run h2load on (taskset -c; see pinning.ts), or anywhere. */
  readonly cpus?: string;
}

export interface LoadResult {
  readonly requests: number;
  readonly failed: number;
  readonly non2xx: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

export async function h2load(spec: LoadSpec): Promise<LoadResult> {
  rmSync(spec.logFile, { force: true });
  const args = [
    `http://127.0.0.1:${spec.port}/envoy.service.auth.v3.Authorization/Check`,
    "-d",
    spec.bodyFile,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    "-c",
    String(spec.clients),
    "-m",
    String(spec.streams),
    "-t",
    "1",
    "-D",
    String(spec.durationS),
    `--warm-up-time=${spec.warmUpS}`,
    `--log-file=${spec.logFile}`,
    ...(spec.rpsPerClient === undefined ? [] : [`--rps=${spec.rpsPerClient}`]),
  ];
  const [command, argv] = pinnedCommand(spec.cpus, "h2load", args);
  const { stdout } = await run(command, argv, { maxBuffer: 1 << 20 });
  const total = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(
    stdout,
  );
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  if (!total || !rps || !codes) throw new Error(`cannot read h2load's output:\n${stdout}`);
  const lines = readFileSync(spec.logFile, "utf8").split("\n");
  const durations = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const cols = line.split("\t");
    if (cols.length < 3) continue;
    durations[n++] = Number(cols[2]) / 1000;
  }
  const sorted = durations.subarray(0, n).sort();
  return {
    requests: Number(total[1]),
    failed: Number(total[3]),
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    rps: Number(rps[1]),
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    p999Ms: percentile(sorted, 0.999),
  };
}
