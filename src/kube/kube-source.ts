// `--scopes kubernetes`: TokenScopes from the API server into the ScopeIndex (ScopeWatcher), their
// status back (StatusWriter), and whether the copy in memory can be trusted (readiness).
import type { ScopeValidationOptions } from "../domain/scope-types.ts";
import type { ScopeIndex } from "../scopes/scope-index.ts";
import { openKubeConnection } from "./kube-config.ts";
import { KubeScopeCache } from "./scope-cache.ts";
import { ScopeWatcher, type RestartReason, type WatchLog } from "./scope-watcher.ts";
import { StatusWriter } from "./status-writer.ts";

export interface KubeScopeOptions {
  /** Kubeconfig path(s); undefined = ~/.kube/config, else in-cluster. */
  readonly kubeconfig: string | undefined;
  /** undefined = all namespaces */
  readonly namespace: string | undefined;
  readonly watchTimeoutMs: number;
  /** How long the watch may be broken before the server says it is not ready. */
  readonly readyGraceMs: number;
  readonly index: ScopeIndex;
  readonly validation: ScopeValidationOptions;
  readonly log: WatchLog;
  /** Only `serve` writes status; a CLI command only reads. */
  readonly writeStatus: boolean;
  readonly onRestart?: (reason: RestartReason) => void;
}

export interface ScopeSourceHealth {
  ready(): boolean;
  /** Why not ready, in words; undefined when ready. */
  problem(): string | undefined;
  onChange(listener: () => void): void;
}

export interface KubeScopeSource {
  readonly health: ScopeSourceHealth;
  /** Resolves true once the first list is in, false if that takes longer than timeoutMs. */
  synced(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

const HEALTH_TICK_MS = 250;

export function startKubeScopes(opts: KubeScopeOptions): KubeScopeSource {
  const connection = openKubeConnection(opts.kubeconfig);
  opts.log("info", "watching TokenScopes", {
    server: connection.server,
    kubeconfig: connection.source,
    namespace: opts.namespace ?? "(all)",
  });
  const writer = opts.writeStatus
    ? new StatusWriter({
        connection,
        validation: opts.validation,
        log: opts.log,
        timeoutMs: opts.watchTimeoutMs,
      })
    : undefined;
  const cache = new KubeScopeCache({
    index: opts.index,
    validation: opts.validation,
    onChange: (object) => writer?.enqueue(object.key),
  });
  writer?.attach(cache);

  let synced = false;
  let brokenSince: number | undefined;
  let lastError = "";
  const ready = () =>
    synced && (brokenSince === undefined || Date.now() - brokenSince <= opts.readyGraceMs);
  const listeners: (() => void)[] = [];
  let reported = false;
  const tick = () => {
    const now = ready();
    if (now === reported) return;
    reported = now;
    opts.log(now ? "info" : "warn", now ? "TokenScopes in sync" : "TokenScopes not in sync", {
      error: now ? undefined : lastError,
    });
    for (const listener of listeners) listener();
  };
  const ticker = setInterval(tick, HEALTH_TICK_MS);
  ticker.unref();

  const watcher = new ScopeWatcher({
    connection,
    cache,
    namespace: opts.namespace,
    watchTimeoutMs: opts.watchTimeoutMs,
    log: opts.log,
    onRestart: (reason) => opts.onRestart?.(reason),
    onSynced: () => {
      synced = true;
      brokenSince = undefined;
      tick();
    },
    onBroken: (error) => {
      brokenSince ??= Date.now();
      lastError = error;
    },
  });
  watcher.start();

  return {
    health: {
      ready,
      problem: () => {
        if (!synced) return `TokenScopes not listed yet${lastError ? ` (${lastError})` : ""}`;
        if (ready()) return undefined;
        const secs = Math.round((Date.now() - (brokenSince ?? Date.now())) / 1000);
        return `TokenScope watch broken for ${secs}s (${lastError})`;
      },
      onChange: (listener) => listeners.push(listener),
    },
    async synced(timeoutMs) {
      const giveUpAt = Date.now() + timeoutMs;
      while (!synced && Date.now() < giveUpAt) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return synced;
    },
    async close() {
      clearInterval(ticker);
      await watcher.stop();
      await writer?.stop();
    },
  };
}
