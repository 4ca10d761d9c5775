// Opens the token store, HMAC key and scope source that a StoreConfig names. Shared by `serve`
// and the CLI so both always see the same tokens and scopes.
import { join } from "node:path";
import type { StoreConfig } from "./config.ts";
import { UsageError } from "./config.ts";
import { readHmacKey, readOrCreateHmacKey } from "./hmac-key.ts";
import type { ScopeSourceHealth } from "./kube/kube-source.ts";
import type { Logger } from "./observability/logger.ts";
import { ScopeIndex } from "./scopes/scope-index.ts";
import { watchScopeFiles } from "./scopes/file-source.ts";
import { createFileStore } from "./store/file-store.ts";
import { createRedisStore } from "./store/redis-store.ts";
import type { TokenStore } from "./store/token-store.ts";

export interface Backends {
  readonly store: TokenStore;
  readonly hmacKey: Uint8Array;
  readonly scopes: ScopeIndex;
  /** Whether the scope source is in sync (Kubernetes: listed, watch not broken too long). */
  readonly scopeHealth: ScopeSourceHealth;
  close(): Promise<void>;
}

/** Files are re-read on change; there is no "out of sync" for them. */
const ALWAYS_IN_SYNC: ScopeSourceHealth = {
  ready: () => true,
  problem: () => undefined,
  onChange: () => undefined,
};

export async function openBackends(
  config: StoreConfig,
  logger: Logger,
  opts: {
    onStoreError?: (op: string) => void;
    waitForStoreMs?: number;
    /** `serve` writes TokenScope status and counts watch restarts; the CLI only reads. */
    kube?: { writeStatus: boolean; readyGraceMs: number; onWatchRestart: (reason: string) => void };
  } = {},
): Promise<Backends> {
  const hmacKey = openKey(config, logger);
  const store = config.redisUrl
    ? createRedisStore({
        url: config.redisUrl,
        prefix: config.redisPrefix,
        deadlineMs: config.redisDeadlineMs,
        retentionMs: config.retentionMs,
        auditMaxEvents: config.auditMaxEvents,
        minReplicas: config.redisMinReplicas,
        onError: (op, err) => {
          opts.onStoreError?.(op);
          logger.log("warn", "token store error", { op, err: String(err) });
        },
      })
    : await createFileStore({
        dir: config.dataDir,
        retentionMs: config.retentionMs,
        auditMaxEvents: config.auditMaxEvents,
      });
  if (opts.waitForStoreMs) await waitForStore(store, opts.waitForStoreMs);
  const scopes = new ScopeIndex();
  if (config.scopes === "kubernetes") {
    return openKubeScopes(config, logger, opts, { store, hmacKey, scopes });
  }
  let watcher: { close(): void };
  try {
    watcher = await watchScopeFiles({
      path: config.scopes,
      index: scopes,
      validation: { maxTTLCapMs: config.maxTTLCapMs },
      log: (level, msg, fields) => logger.log(level, msg, fields),
    });
  } catch (err) {
    await store.close();
    throw new UsageError(`--scopes: ${(err as Error).message}`);
  }
  return {
    store,
    hmacKey,
    scopes,
    scopeHealth: ALWAYS_IN_SYNC,
    async close() {
      watcher.close();
      await store.close();
    },
  };
}

async function openKubeScopes(
  config: StoreConfig,
  logger: Logger,
  opts: Parameters<typeof openBackends>[2],
  opened: { store: TokenStore; hmacKey: Uint8Array; scopes: ScopeIndex },
): Promise<Backends> {
  let source;
  try {
    // Loaded only here: @kubernetes/client-node is ~25 MB of module source and code on the heap
    // of every process that imports it, and a server on --scopes files never uses it.
    const { startKubeScopes } = await import("./kube/kube-source.ts");
    source = startKubeScopes({
      kubeconfig: config.kubeconfig,
      namespace: config.watchNamespace,
      watchTimeoutMs: config.kubeWatchTimeoutMs,
      readyGraceMs: opts?.kube?.readyGraceMs ?? 60_000,
      index: opened.scopes,
      validation: { maxTTLCapMs: config.maxTTLCapMs },
      log: (level, msg, fields) => logger.log(level, msg, fields),
      writeStatus: opts?.kube?.writeStatus ?? false,
      onRestart: opts?.kube?.onWatchRestart,
    });
  } catch (err) {
    await opened.store.close();
    throw new UsageError(`--scopes kubernetes: ${(err as Error).message}`);
  }
  // A CLI command needs the scopes now; `serve` starts anyway and is not ready until they come.
  if (opts?.waitForStoreMs && !(await source.synced(opts.waitForStoreMs))) {
    const why = source.health.problem() ?? "";
    await source.close();
    await opened.store.close();
    throw new Error(`cannot list TokenScopes from the Kubernetes API: ${why}`);
  }
  return {
    ...opened,
    scopeHealth: source.health,
    async close() {
      await source.close();
      await opened.store.close();
    },
  };
}

function openKey(config: StoreConfig, logger: Logger): Uint8Array {
  if (config.hmacKeyFile) return readHmacKey(config.hmacKeyFile);
  if (config.redisUrl) {
    // Replicas sharing Redis must share one key; a generated one would silently split them.
    throw new UsageError("--hmac-key-file is required with --redis-url");
  }
  const file = join(config.dataDir, "hmac.key");
  const { key, created } = readOrCreateHmacKey(file);
  if (created) logger.log("info", "created a new HMAC key for the embedded store", { file });
  return key;
}

/**
 * Redis connects asynchronously and, with the offline queue off, refuses commands until then.
 * Wait for the first answer; the CLI fails with StoreUnavailableError if it never comes.
 */
async function waitForStore(store: TokenStore, timeoutMs: number): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    try {
      await store.ping();
      return;
    } catch (err) {
      if (Date.now() >= giveUpAt) {
        await store.close();
        throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
