// Composition root of `tokenscope serve`: config → backends → servers; SIGTERM drains.
import { randomBytes } from "node:crypto";
import { createCheckService } from "./check/check-service.ts";
import type { ServeConfig } from "./config.ts";
import { openBackends } from "./backends.ts";
import { startGrpcServer } from "./envoy/grpc-server.ts";
import { startHttpAuthzServer } from "./http-authz/http-authz-server.ts";
import { trustedProxyMatcher } from "./http-authz/trusted-proxies.ts";
import { createLogger, type Logger } from "./observability/logger.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { startOpsServer } from "./observability/ops-server.ts";
import { createInventoryMetrics } from "./observability/inventory-metrics.ts";
import { UsageRecorder } from "./tokens/usage-recorder.ts";
import { StoreHealth } from "./store/store-health.ts";
import { withTokenCache } from "./store/token-cache.ts";
import { startWebhookServer, type WebhookServer } from "./kube/webhook-server.ts";
import { pretenuringOff } from "./v8-flags.ts";

export interface RunningServer {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Set when --http-authz-addr is given. */
  readonly httpAuthzPort?: number;
  /** Set when the admission webhook runs (--webhook-cert-file/--webhook-key-file). */
  readonly webhookPort?: number;
  ready(): boolean;
  /**
   * Turns not-ready at once, keeps answering for `delayMs` (while Kubernetes and the mesh take
   * the endpoint out of rotation), then stops accepting and lets in-flight checks finish.
   */
  stop(opts?: { delayMs?: number }): Promise<void>;
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
  pretenuringOff(process.execArgv, config.nodeOptions);
  const metrics = createMetrics({
    maxTokens: config.metricsMaxTokens,
    tokenIdleMs: config.metricsTokenIdleMs,
  });
  // Starts even when Redis is down: not ready until it answers (StoreHealth below).
  const backends = await openBackends(config, logger, {
    onStoreError: (op) => metrics.storeError(op),
    kube: {
      writeStatus: true,
      readyGraceMs: config.kubeReadyGraceMs,
      onWatchRestart: (reason) => metrics.kubeWatchRestart(reason),
    },
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
    ready: () =>
      !draining && storeHealth.healthy && backends.scopes.loaded && backends.scopeHealth.ready(),
    reasons: () => [
      ...(draining ? ["shutting down"] : []),
      ...(storeHealth.healthy ? [] : ["token store not answering"]),
      ...(backends.scopes.loaded ? [] : ["scopes not loaded"]),
      ...[backends.scopeHealth.problem()].filter((p) => p !== undefined),
    ],
  };
  const inventory = createInventoryMetrics({
    registry: metrics.registry,
    store: backends.store,
    scopes: backends.scopes,
    logger,
    clock: Date.now,
    intervalMs: config.inventoryIntervalMs,
    expiringSoonMs: config.expiringSoonMs,
  });
  const usage = new UsageRecorder({
    store: backends.store,
    logger,
    intervalMs: config.usageIntervalMs,
  });
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
    watchNamespace: config.scopes === "kubernetes" ? config.watchNamespace : undefined,
    usage,
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
  const httpAuthz =
    config.httpAuthzAddr &&
    (await startHttpAuthzServer({
      ...config.httpAuthzAddr,
      check,
      trustedProxies: trustedProxyMatcher(config.trustedProxies),
      onInternalError: (err) =>
        logger.log("error", "internal error in HTTP authorization", { err: String(err) }),
    }));
  // Admission does not depend on the store or the scopes: /readyz is about the Check path only.
  let webhook: WebhookServer | undefined;
  if (config.webhook) {
    try {
      webhook = await startWebhookServer({
        ...config.webhook,
        maxTTLCapMs: config.maxTTLCapMs,
        logger,
      });
    } catch (err) {
      await grpcServer.close(0);
      await httpAuthz?.close(0);
      await ops?.close();
      await cache.close();
      await backends.close();
      throw err;
    }
  }
  storeHealth.onChange(() => grpcServer.setServing(readiness.ready()));
  backends.scopeHealth.onChange(() => grpcServer.setServing(readiness.ready()));
  await storeHealth.start();
  usage.start();
  void inventory.start();
  grpcServer.setServing(readiness.ready());
  logger.log("info", "tokenscope serving", {
    grpc_port: grpcServer.port,
    http_port: ops?.port ?? null,
    http_authz_port: httpAuthz?.port ?? null,
    environment: config.environment,
    namespace: config.namespace ?? null,
    store: backends.store.kind,
    scopes: backends.scopes.size,
    instance: randomBytes(4).toString("hex"),
  });
  return {
    grpcPort: grpcServer.port,
    httpPort: ops?.port ?? 0,
    httpAuthzPort: httpAuthz?.port,
    ...(webhook ? { webhookPort: webhook.port } : {}),
    ready: () => readiness.ready(),
    metrics,
    async stop(opts = {}) {
      draining = true;
      grpcServer.setServing(false);
      const delayMs = opts.delayMs ?? 0;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      await grpcServer.close(config.shutdownGraceMs);
      await httpAuthz?.close(config.shutdownGraceMs);
      storeHealth.stop();
      await webhook?.close();
      inventory.stop();
      await usage.stop();
      await ops?.close();
      await cache.close();
      await backends.close();
    },
  };
}
