// `serve --workers N`: a node:cluster primary forks N workers, each a full gRPC server on the
// shared port (grpc-js listens through cluster's handle sharing; connections are handed out
// round-robin). The primary serves the ops HTTP port: /metrics aggregated over the workers,
// /readyz ready only when every worker is. SIGTERM to the primary drains every worker.
import cluster, { type Worker } from "node:cluster";
import { once } from "node:events";
import { createServer } from "node:net";
import type { ServeConfig } from "./config.ts";
import { serve } from "./main.ts";
import { clusterMetricsView, exposeToPrimary } from "./observability/cluster-metrics.ts";
import type { Logger } from "./observability/logger.ts";
import { startOpsServer } from "./observability/ops-server.ts";
import { operatorSet } from "./v8-flags.ts";

const STATE_MESSAGE = "tokenscope:worker-state";
const RESTART_DELAY_MS = 1000;
/** Beyond the workers' own drain time (--shutdown-grace): then they are killed. */
const EXIT_GRACE_MS = 5000;

interface WorkerState {
  readonly type: typeof STATE_MESSAGE;
  readonly ready: boolean;
}

const STOP_MESSAGE = "tokenscope:stop";

interface StopMessage {
  readonly type: typeof STOP_MESSAGE;
  readonly signal: string;
  readonly delayMs: number;
}

function isStopMessage(msg: unknown): msg is StopMessage {
  return typeof msg === "object" && msg !== null && "type" in msg && msg.type === STOP_MESSAGE;
}

function isWorkerState(msg: unknown): msg is WorkerState {
  return typeof msg === "object" && msg !== null && "type" in msg && msg.type === STATE_MESSAGE;
}

/** Runs this process's part: the primary, or one worker. Resolves with the exit status. */
export function serveCluster(config: ServeConfig, logger: Logger): Promise<number> {
  return cluster.isPrimary ? runPrimary(config, logger) : runWorker(config, logger);
}

function withWorkerId(logger: Logger, id: number): Logger {
  return {
    log: (level, msg, fields) => logger.log(level, msg, { ...fields, worker: id }),
    audit: (fields) => logger.audit({ ...fields, worker: id }),
  };
}

async function runWorker(config: ServeConfig, baseLogger: Logger): Promise<number> {
  const logger = withWorkerId(baseLogger, cluster.worker?.id ?? 0);
  const server = await serve(config, logger, { opsServer: false });
  exposeToPrimary(server.metrics.registry);
  let reported: boolean | undefined;
  const report = () => {
    const ready = server.ready();
    if (ready === reported || !process.connected) return;
    reported = ready;
    process.send?.({ type: STATE_MESSAGE, ready } satisfies WorkerState);
  };
  report();
  const reporter = setInterval(report, 100);
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (why: string, delayMs: number) => {
      if (stopping) return;
      stopping = true;
      clearInterval(reporter);
      logger.log("info", "draining", { signal: why, delay_ms: delayMs });
      void server
        .stop({ delayMs })
        .then(
          () => 0,
          (err: unknown) => {
            logger.log("error", "shutdown failed", { err: String(err) });
            return 1;
          },
        )
        .then((status) => {
          // The IPC channel to the primary would keep this process alive.
          if (process.connected) process.disconnect();
          resolve(status);
        });
    };
    // The primary says when and how: after SIGTERM, keep answering for --shutdown-delay while
    // endpoints are removed; after Ctrl-C, stop now.
    process.on("message", (msg: unknown) => {
      if (isStopMessage(msg)) stop(msg.signal, msg.delayMs);
    });
    process.once("SIGTERM", () => stop("SIGTERM", config.shutdownDelayMs));
    // Ctrl-C reaches the whole process group; the primary coordinates the drain.
    process.on("SIGINT", () => undefined);
    // The primary is gone: nobody balances connections to us or scrapes us any more.
    process.once("disconnect", () => stop("primary exited", 0));
  });
}

/** Port 0: the primary picks the port, so every worker listens on the same one. */
async function pickGrpcAddr(addr: string): Promise<string> {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m || m[2] !== "0") return addr;
  const host = (m[1] ?? "").replace(/^\[(.*)\]$/, "$1");
  const probe = createServer();
  probe.listen(0, host);
  await once(probe, "listening");
  const address = probe.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise((resolve) => probe.close(resolve));
  return `${m[1] ?? ""}:${port}`;
}

/**
 * V8 flags for the workers. A 16 MB semi-space (32 MB young generation) instead of V8's default
 * on a large host (64 MB, 128 MB committed under load): ~96 MB less resident memory per worker
 * for ~1% fewer checks/s, and a lower p99 (shorter scavenges); `npm run bench:memory` and
 * `node test/bench/profile.ts --plain` measure both (README, Performance). The operator's own
 * choice (node flags or NODE_OPTIONS) wins.
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string): string[] {
  const young = operatorSet(/--(max|min)-semi-space-size|--max-heap-size/, execArgv, nodeOptions)
    ? []
    : ["--max-semi-space-size=16"];
  return [...execArgv, ...young];
}

async function runPrimary(config: ServeConfig, logger: Logger): Promise<number> {
  const grpcAddr = await pickGrpcAddr(config.grpcAddr);
  cluster.setupPrimary({
    args: [...process.argv.slice(2), `--grpc-addr=${grpcAddr}`],
    execArgv: workerExecArgv(process.execArgv, config.nodeOptions),
  });
  const ready = new Map<Worker, boolean>();
  let draining = false;
  const view = clusterMetricsView();
  const updateGauge = () => {
    const up = [...ready.values()].filter(Boolean).length;
    view.setWorkers("ready", up);
    view.setWorkers("not_ready", config.workers - up);
  };

  const fork = (): void => {
    const worker = cluster.fork();
    logger.log("info", "worker started", { worker: worker.id, pid: worker.process.pid });
    ready.set(worker, false);
    updateGauge();
    worker.on("message", (msg: unknown) => {
      if (!isWorkerState(msg)) return;
      ready.set(worker, msg.ready);
      updateGauge();
    });
    worker.on("exit", (code, signal) => {
      ready.delete(worker);
      updateGauge();
      if (draining) return;
      logger.log("error", "worker exited; starting another", {
        worker: worker.id,
        code,
        signal,
      });
      setTimeout(fork, RESTART_DELAY_MS).unref();
    });
  };

  const readiness = {
    ready: () => !draining && ready.size === config.workers && [...ready.values()].every(Boolean),
    reasons: () => {
      const up = [...ready.values()].filter(Boolean).length;
      return [
        ...(draining ? ["shutting down"] : []),
        ...(up < config.workers ? [`${up} of ${config.workers} workers ready`] : []),
      ];
    },
  };
  // Before any worker exists, so a taken HTTP port fails the start with nothing to clean up.
  const ops = await startOpsServer({ ...config.httpAddr, registry: view, readiness });
  for (let i = 0; i < config.workers; i++) fork();
  logger.log("info", "tokenscope serving", {
    grpc_addr: grpcAddr,
    grpc_port: Number(/:(\d+)$/.exec(grpcAddr)?.[1]),
    http_port: ops.port,
    workers: config.workers,
    environment: config.environment,
    namespace: config.namespace ?? null,
    store: config.redisUrl ? "redis" : "file",
  });

  return new Promise((resolve) => {
    const stop = (signal: string, delayMs: number) => {
      if (draining) return;
      draining = true;
      logger.log("info", "draining", { signal, workers: ready.size, delay_ms: delayMs });
      const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      const exited = workers.map((w) => (w.isDead() ? Promise.resolve() : once(w, "exit")));
      for (const w of workers) {
        if (w.isConnected()) w.send({ type: STOP_MESSAGE, signal, delayMs } satisfies StopMessage);
        else w.process.kill("SIGTERM");
      }
      const killer = setTimeout(
        () => {
          for (const w of workers) if (!w.isDead()) w.process.kill("SIGKILL");
        },
        delayMs + config.shutdownGraceMs + EXIT_GRACE_MS,
      );
      void Promise.all(exited).then(async () => {
        clearTimeout(killer);
        await ops.close();
        resolve(0);
      });
    };
    // As a single process: SIGTERM waits out endpoint removal, Ctrl-C stops now.
    process.once("SIGTERM", () => stop("SIGTERM", config.shutdownDelayMs));
    process.once("SIGINT", () => stop("SIGINT", 0));
  });
}
