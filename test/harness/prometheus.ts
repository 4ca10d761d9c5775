import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.ts";

// A real Prometheus (Debian's `prometheus` package) per suite, on a free loopback port, scraping
// the given targets every second and evaluating the given rule files every second. Never a mock.

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface PromAlert {
  readonly labels: Record<string, string>;
  readonly state: "pending" | "firing" | "inactive";
}

export interface PrometheusServer {
  readonly url: string;
  /** Instant query; rejects on a PromQL error (with Prometheus' message). */
  query(expr: string): Promise<PromSample[]>;
  /** Values of a label among the series matching `match` (what Grafana's label_values runs). */
  labelValues(label: string, match: string): Promise<string[]>;
  /** Every label name Prometheus holds. */
  labelNames(): Promise<string[]>;
  alerts(): Promise<PromAlert[]>;
  /** The scrape targets' health as Prometheus reports it. */
  targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]>;
  /** Polls until `check` passes (it throws until then); the last failure if it never does. */
  eventually<T>(check: () => Promise<T>, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
  /** Prometheus' own log, for failure messages. */
  output(): string;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

const START_TIMEOUT_MS = 20_000;

function missingBinary(name: string): Error {
  return new Error(`${name} is not installed (apt-get install -y prometheus)`);
}

export async function startPrometheus(opts: {
  targets: string[];
  ruleFiles?: string[];
}): Promise<PrometheusServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "tokenscope-prometheus-"));
  const config = {
    global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
    rule_files: (opts.ruleFiles ?? []).map((f) => resolve(f)),
    scrape_configs: [
      {
        job_name: "tokenscope",
        // As the ServiceMonitor in deploy/prometheus: the checks' own `namespace` label stays.
        honor_labels: true,
        static_configs: [{ targets: opts.targets }],
      },
    ],
  };
  // JSON is YAML: no YAML writer needed.
  await writeFile(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
  const child = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  const collect = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-8000);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  const url = `http://127.0.0.1:${port}`;

  const giveUpAt = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== undefined) {
      const code = "code" in spawnError ? spawnError.code : undefined;
      throw code === "ENOENT" ? missingBinary("prometheus") : spawnError;
    }
    if (child.exitCode !== null) throw new Error(`prometheus exited during start:\n${log}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > giveUpAt) {
      child.kill("SIGKILL");
      throw new Error(`prometheus was not ready within ${START_TIMEOUT_MS} ms:\n${log}`);
    }
    await sleep(100);
  }

  async function api<T>(path: string): Promise<T> {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`prometheus ${path}: ${body.error ?? "error"}`);
    return body.data;
  }

  const server: PrometheusServer = {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: PromSample[] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      return data.resultType === "vector" ? data.result : [];
    },
    labelValues: (label, match) =>
      api<string[]>(`/api/v1/label/${label}/values?match[]=${encodeURIComponent(match)}`),
    labelNames: () => api<string[]>("/api/v1/labels"),
    async alerts() {
      return (await api<{ alerts: PromAlert[] }>("/api/v1/alerts")).alerts;
    },
    async targets() {
      const data = await api<{
        activeTargets: { scrapeUrl: string; health: string; lastError: string }[];
      }>("/api/v1/targets");
      return data.activeTargets;
    },
    async eventually(check, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        try {
          return await check();
        } catch (err) {
          if (Date.now() > until) throw err;
          await sleep(250);
        }
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        child.kill("SIGTERM");
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
    output: () => log,
  };
  return server;
}

/** Runs promtool with the arguments; its exit status and output. */
export function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", timeout: 60_000 });
  if (r.error) {
    const code = "code" in r.error ? r.error.code : undefined;
    throw code === "ENOENT" ? missingBinary("promtool") : r.error;
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
