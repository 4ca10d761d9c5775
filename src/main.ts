// Composition root of `tokenscope serve`: config → backends → servers; SIGTERM drains.
import { randomBytes } from "node:crypto";
import { createCheckService } from "./check/check-service.ts";
import type { ServeConfig } from "./config.ts";
import { openBackends } from "./backends.ts";
import { startGrpcServer } from "./envoy/grpc-server.ts";
import { createLogger, type Logger } from "./observability/logger.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { startOpsServer } from "./observability/ops-server.ts";
import { StoreHealth } from "./store/store-health.ts";
import { withTokenCache } from "./store/token-cache.ts";

export interface RunningServer {
  readonly grpcPort: number;
  readonly httpPort: number;
  ready(): boolean;
  stop(): Promise<void>;
  readonly metrics: Metrics;
}

export interface ServeOptions {
  /** False in a `--workers` worker: the cluster primary serves /metrics and health for all. */
  readonly opsServer?: boolean;
}

export async function serve(
  config: ServeConfig,
  logger: Logger = createLogger({ level: config.logLevel }),
  options: ServeOptions = {},
): Promise<RunningServer> {
  const metrics = createMetrics();
  // Starts even when Redis is down: not ready until it answers (StoreHealth below).
  const backends = await openBackends(config, logger, {
    onStoreError: (op) => metrics.storeError(op),
  });
  if (!config.redisUrl) {
    logger.log(
      "info",
      "embedded mode: tokens in a local file store, not shared with other replicas",
      {
        data_dir: config.dataDir,
        scopes: config.scopes,
      },
    );
  }
  if (config.scopesAreExamples) {
    logger.log("info", "scopes: using the example manifests (pass --scopes to choose)", {
      scopes: config.scopes,
    });
  }
  const storeHealth = new StoreHealth(backends.store, {
    healthyIntervalMs: 1000,
    unhealthyIntervalMs: 100,
  });
  let draining = false;
  const readiness = {
    ready: () => !draining && storeHealth.healthy && backends.scopes.loaded,
    reasons: () => [
      ...(draining ? ["shutting down"] : []),
      ...(storeHealth.healthy ? [] : ["token store not answering"]),
      ...(backends.scopes.loaded ? [] : ["scopes not loaded"]),
    ],
  };
  const cache = withTokenCache(backends.store, {
    redisUrl: config.redisUrl,
    redisPrefix: config.redisPrefix,
    ...config.cache,
    onLookup: (result) => metrics.cacheLookup(result),
    onError: (op, err) =>
      logger.log("warn", "token cache invalidation feed", { op, err: String(err) }),
    onLiveChange: (live) =>
      logger.log(live ? "info" : "warn", live ? "token cache on" : "token cache dropped", {
        reason: live ? "invalidation feed subscribed" : "invalidation feed down; reading through",
      }),
  });
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
  });
  const grpcServer = await startGrpcServer({
    addr: config.grpcAddr,
    check,
    onInternalError: (err) => logger.log("error", "internal error in Check", { err: String(err) }),
  });
  const ops =
    options.opsServer === false
      ? undefined
      : await startOpsServer({ ...config.httpAddr, registry: metrics.registry, readiness });
  storeHealth.onChange(() => grpcServer.setServing(readiness.ready()));
  await storeHealth.start();
  grpcServer.setServing(readiness.ready());
  logger.log("info", "tokenscope serving", {
    grpc_port: grpcServer.port,
    http_port: ops?.port ?? null,
    environment: config.environment,
    namespace: config.namespace ?? null,
    store: backends.store.kind,
    scopes: backends.scopes.size,
    instance: randomBytes(4).toString("hex"),
  });
  return {
    grpcPort: grpcServer.port,
    httpPort: ops?.port ?? 0,
    ready: () => readiness.ready(),
    metrics,
    async stop() {
      draining = true;
      grpcServer.setServing(false);
      await grpcServer.close(config.shutdownGraceMs);
      storeHealth.stop();
      await ops?.close();
      await cache.close();
      await backends.close();
    },
  };
}
