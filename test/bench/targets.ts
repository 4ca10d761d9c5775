// The servers under test, each its own process: `tokenscope serve` (bin/tokenscope, or the
// image's compiled bin/tokenscope.js: see compiled.ts) and the empty grpc-js baseline. Logs go to files, so the bench never spends CPU reading them.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface Target {
  readonly name: string;
  readonly pid: number;
  readonly grpcPort: number;
  /** 0 for the baseline, which has no ops server. */
  readonly httpPort: number;
  stop(): Promise<void>;
}

async function startedLine(
  child: ChildProcess,
  file: string,
  match: (line: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`exited during start:\n${readFileSync(file, "utf8")}`);
    for (const text of readFileSync(file, "utf8").split("\n")) {
      if (!text.startsWith("{")) continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      if (match(line)) return line;
    }
    if (Date.now() > giveUpAt) throw new Error(`no start-up line in ${file}`);
    await sleep(50);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

export async function startTokenscope(opts: {
  name: string;
  dir: string;
  args: string[];
  /** Another checkout to run `tokenscope` from (bench --compare); this one by default. */
  root?: string;
  /** Node/V8 flags before the script (bench:memory variants), e.g. ["--max-semi-space-size=8"]. */
  nodeArgs?: string[];
  /** The script to run instead of `root`'s bin/tokenscope: the image's compiled bin/tokenscope.js. */
  entry?: string;
}): Promise<Target> {
  const log = join(opts.dir, `${opts.name}.log`);
  const out = openSync(log, "w");
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      opts.entry ?? join(opts.root ?? ROOT, "bin/tokenscope"),
      "serve",
      "--grpc-addr=127.0.0.1:0",
      "--http-addr=127.0.0.1:0",
      ...opts.args,
    ],
    { stdio: ["ignore", out, out] },
  );
  const line = await startedLine(
    child,
    log,
    (l) => l.msg === "tokenscope serving" && typeof l.http_port === "number",
  ).catch(async (err: unknown) => {
    await stopChild(child);
    throw err;
  });
  const target: Target = {
    name: opts.name,
    pid: child.pid ?? 0,
    grpcPort: line.grpc_port as number,
    httpPort: line.http_port as number,
    stop: () => stopChild(child),
  };
  const giveUpAt = Date.now() + 30_000;
  while (Date.now() < giveUpAt) {
    const res = await fetch(`http://127.0.0.1:${target.httpPort}/readyz`).catch(() => undefined);
    if (res?.status === 200) return target;
    await sleep(100);
  }
  await target.stop();
  throw new Error(`${opts.name} never turned ready; see ${log}`);
}

export async function startBaseline(dir: string): Promise<Target> {
  const log = join(dir, "baseline.log");
  const out = openSync(log, "w");
  const child = spawn(process.execPath, [join(ROOT, "test/bench/baseline-server.ts"), "0"], {
    stdio: ["ignore", out, out],
  });
  const line = await startedLine(child, log, (l) => l.msg === "baseline serving").catch(
    async (err: unknown) => {
      await stopChild(child);
      throw err;
    },
  );
  return {
    name: "baseline",
    pid: child.pid ?? 0,
    grpcPort: line.grpc_port as number,
    httpPort: 0,
    stop: () => stopChild(child),
  };
}

/** tokenscope_checks_total summed by decision/reason, and the cache lookups by result. */
export async function scrape(target: Target): Promise<Record<string, number>> {
  if (target.httpPort === 0) return {};
  const text = await (await fetch(`http://127.0.0.1:${target.httpPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(
    /^tokenscope_checks_total\{decision="(\w+)",reason="(\w+)"[^}]*\} (\d+)/gm,
  )) {
    const key = m[1] === "allow" ? "allow" : `deny:${m[2] ?? ""}`;
    out[key] = (out[key] ?? 0) + Number(m[3]);
  }
  for (const m of text.matchAll(/^tokenscope_cache_lookups_total\{result="(\w+)"\} (\d+)/gm)) {
    out[`cache:${m[1] ?? ""}`] = Number(m[2]);
  }
  return out;
}

export function delta(after: Record<string, number>, before: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
