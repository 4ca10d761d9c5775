// Opens the token store, HMAC key and scope source that a StoreConfig names. Shared by `serve`
// and the CLI so both always see the same tokens and scopes.
import { join } from "node:path";
import type { StoreConfig } from "./config.ts";
import { UsageError } from "./config.ts";
import { readHmacKey, readOrCreateHmacKey } from "./hmac-key.ts";
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
  close(): Promise<void>;
}

export async function openBackends(
  config: StoreConfig,
  logger: Logger,
  opts: { onStoreError?: (op: string) => void; waitForStoreMs?: number } = {},
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
  if (config.scopes === "kubernetes") {
    await store.close();
    throw new UsageError(
      "--scopes kubernetes is not part of this build yet; pass a file or folder",
    );
  }
  const scopes = new ScopeIndex();
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
    async close() {
      watcher.close();
      await store.close();
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
