// The TokenScope REST paths and the three calls tokenscope makes: list (in pages), watch, and
// merge-patch of the status subresource.
import { kubeRequest, watchLines, type WatchEnd } from "./kube-http.ts";
import type { KubeConnection } from "./kube-config.ts";
import { GROUP, PLURAL, VERSION, toApiStatus, toScopeObject } from "./watch-events.ts";
import type { ApiStatus, ScopeObject } from "./watch-events.ts";

export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  readonly status: ApiStatus;

  constructor(what: string, status: ApiStatus) {
    const detail = [status.reason, status.message].filter((s) => s !== "").join(": ");
    super(`${what}: HTTP ${status.code}${detail ? ` ${detail}` : ""}`);
    this.status = status;
  }
}

const BASE = `/apis/${GROUP}/${VERSION}`;

export function collectionPath(namespace: string | undefined): string {
  return namespace === undefined
    ? `${BASE}/${PLURAL}`
    : `${BASE}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}`;
}

export function statusPath(namespace: string, name: string): string {
  return `${collectionPath(namespace)}/${encodeURIComponent(name)}/status`;
}

export interface ScopeList {
  readonly objects: readonly ScopeObject[];
  /** Items that were not usable objects, with why. */
  readonly skipped: readonly string[];
  readonly resourceVersion: string;
}

export interface ListOptions {
  readonly namespace: string | undefined;
  readonly pageSize: number;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** A consistent list in pages of `pageSize` (limit/continue); rejects with KubeApiError. */
export async function listScopes(conn: KubeConnection, opts: ListOptions): Promise<ScopeList> {
  const objects: ScopeObject[] = [];
  const skipped: string[] = [];
  let next: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ limit: String(opts.pageSize) });
    if (next !== undefined) query.set("continue", next);
    const path = `${collectionPath(opts.namespace)}?${query.toString()}`;
    const res = await kubeRequest(conn, {
      method: "GET",
      path,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
    if (res.status !== 200) throw new KubeApiError("list", toApiStatus(res.body, res.status));
    const body = res.body as { items?: unknown; metadata?: Record<string, unknown> } | undefined;
    const items = Array.isArray(body?.items) ? (body.items as unknown[]) : undefined;
    const rv = body?.metadata?.resourceVersion;
    if (!items || typeof rv !== "string" || rv === "") {
      throw new KubeApiError("list", { code: 200, reason: "BadList", message: "no items or rv" });
    }
    for (const item of items) {
      const obj = toScopeObject(item);
      if ("why" in obj) skipped.push(obj.why);
      else objects.push(obj);
    }
    const token = body?.metadata?.continue;
    if (typeof token !== "string" || token === "") {
      return { objects, skipped, resourceVersion: rv };
    }
    next = token;
  }
}

export interface WatchOptions {
  readonly namespace: string | undefined;
  readonly resourceVersion: string;
  /** Asks the server to end the watch cleanly after this long (it picks when, like client-go). */
  readonly timeoutSeconds: number;
  readonly headerTimeoutMs: number;
  readonly signal: AbortSignal;
  readonly onOpen: () => void;
  readonly onLine: (line: string) => void;
}

export function watchScopes(conn: KubeConnection, opts: WatchOptions): Promise<WatchEnd> {
  const query = new URLSearchParams({
    watch: "1",
    resourceVersion: opts.resourceVersion,
    allowWatchBookmarks: "true",
    timeoutSeconds: String(opts.timeoutSeconds),
  });
  return watchLines(conn, `${collectionPath(opts.namespace)}?${query.toString()}`, opts);
}

/** JSON merge patch of /status; rejects with KubeApiError (409 and 404 included). */
export async function patchScopeStatus(
  conn: KubeConnection,
  target: { namespace: string; name: string },
  patch: unknown,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<ScopeObject | undefined> {
  const res = await kubeRequest(conn, {
    method: "PATCH",
    path: statusPath(target.namespace, target.name),
    body: patch,
    contentType: "application/merge-patch+json",
    ...opts,
  });
  if (res.status !== 200 && res.status !== 201) {
    throw new KubeApiError("patch status", toApiStatus(res.body, res.status));
  }
  const obj = toScopeObject(res.body);
  return "why" in obj ? undefined : obj;
}
