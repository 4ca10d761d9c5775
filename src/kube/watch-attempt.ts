// One watch request, from open to end, guarded by a watchdog: when nothing at all (not even a
// bookmark) arrives for `timeoutMs`, the connection is taken for half-open and dropped. Tells
// why the watch ended, so the loop knows whether to resume, relist, or back off.
import type { KubeConnection } from "./kube-config.ts";
import type { WatchEnd } from "./kube-http.ts";
import { watchScopes } from "./tokenscope-api.ts";

export type RestartReason = "closed" | "error" | "expired" | "watchdog" | "handler_error";

export interface WatchFault {
  readonly restart: RestartReason;
  /** The resourceVersion cannot be resumed from (or the cache is suspect): list again. */
  readonly relist: boolean;
  /** Set when the watch is broken rather than ended normally. */
  readonly error?: string;
}

export interface WatchAttempt {
  readonly connection: KubeConnection;
  readonly namespace: string | undefined;
  readonly resourceVersion: string;
  readonly timeoutMs: number;
  /** Ends the attempt early (shutdown); it then resolves "stopped". */
  readonly stop: AbortSignal;
  readonly onOpen: () => void;
  /** Applies one event line; a returned fault ends the watch. */
  readonly onLine: (line: string) => WatchFault | undefined;
}

export async function watchOnce(a: WatchAttempt): Promise<WatchFault | "stopped"> {
  const abort = new AbortController();
  const stopWatch = () => abort.abort();
  a.stop.addEventListener("abort", stopWatch);
  let lastActivity = Date.now();
  let fault: WatchFault | undefined;
  const fail = (f: WatchFault) => {
    fault ??= f;
    abort.abort();
  };
  const watchdog = setInterval(
    () => {
      if (Date.now() - lastActivity <= a.timeoutMs) return;
      fail({ restart: "watchdog", relist: true, error: `nothing received for ${a.timeoutMs} ms` });
    },
    Math.max(50, Math.min(1000, a.timeoutMs / 4)),
  );
  const end = await watchScopes(a.connection, {
    namespace: a.namespace,
    resourceVersion: a.resourceVersion,
    // Below the watchdog, so a quiet but healthy watch is ended by the server first.
    timeoutSeconds: Math.max(1, Math.floor(((0.5 + Math.random() * 0.4) * a.timeoutMs) / 1000)),
    headerTimeoutMs: a.timeoutMs,
    signal: abort.signal,
    onOpen: () => {
      lastActivity = Date.now();
      a.onOpen();
    },
    onLine: (line) => {
      lastActivity = Date.now();
      try {
        const f = a.onLine(line);
        if (f) fail(f);
      } catch (err) {
        // The cache may now be half-updated: start again from a fresh list.
        fail({
          restart: "handler_error",
          relist: true,
          error: `handling an event: ${String(err)}`,
        });
      }
    },
  });
  clearInterval(watchdog);
  a.stop.removeEventListener("abort", stopWatch);
  if (a.stop.aborted) return "stopped";
  return fault ?? classify(end);
}

function classify(end: WatchEnd): WatchFault {
  if (end.kind === "closed") return { restart: "closed", relist: false };
  if (end.kind === "error") return { restart: "error", relist: false, error: end.error.message };
  // 410 Gone as a plain response: our resourceVersion is too old to resume from.
  if (end.status === 410) return { restart: "expired", relist: true };
  const message = end.body && typeof end.body === "object" ? JSON.stringify(end.body) : "";
  return { restart: "error", relist: false, error: `HTTP ${end.status} ${message}`.trim() };
}
