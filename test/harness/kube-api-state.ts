// The stored TokenScopes of the test Kubernetes API server, kept as the real API server keeps
// them: one resourceVersion counter for every write, metadata.generation bumped only when the
// spec changes, status written only through the status subresource, and an event history that
// watches resume from until it is compacted (then a resume is answered 410 Gone).
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";

export type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };
export type EventType = "ADDED" | "MODIFIED" | "DELETED";
export interface StoredEvent {
  readonly rv: number;
  readonly type: EventType;
  readonly object: Obj;
}

export const API_VERSION = "tokenscope.dev/v1alpha1";
export const KIND = "TokenScope";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out = new Map(Object.entries(isRecord(target) ? target : {}));
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out.delete(k);
    else out.set(k, mergePatch(out.get(k), v));
  }
  return Object.fromEntries(out);
}

export class StatusError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
  toStatus() {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
  }
}

export class KubeApiState {
  #rv = 1000;
  /** Resuming from a resourceVersion below this is 410 Gone. */
  #compactedRv = 1000;
  readonly #objects = new Map<string, Obj>();
  #history: StoredEvent[] = [];
  readonly #listeners = new Set<(e: StoredEvent) => void>();

  get resourceVersion(): number {
    return this.#rv;
  }

  get compactedRv(): number {
    return this.#compactedRv;
  }

  onEvent(listener: (e: StoredEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Sorted by namespace/name, as the API server lists; deep copies. */
  list(namespace?: string): Obj[] {
    return [...this.#objects.entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => structuredClone(o));
  }

  get(namespace: string, name: string): Obj | undefined {
    const o = this.#objects.get(`${namespace}/${name}`);
    return o && structuredClone(o);
  }

  /** Events after `rv` (exclusive); throws 410 when they are no longer kept. */
  since(rv: number): StoredEvent[] {
    if (rv < this.#compactedRv) {
      throw new StatusError(
        410,
        "Expired",
        `too old resource version: ${rv} (${this.#compactedRv})`,
      );
    }
    return this.#history.filter((e) => e.rv > rv);
  }

  /** Forget the event history, as etcd compaction does: older resumes get 410. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history = [];
  }

  /** kubectl apply: create, or replace spec/labels/annotations; status is never taken from here. */
  apply(manifest: Record<string, unknown>): Obj {
    const meta = isRecord(manifest.metadata) ? manifest.metadata : {};
    const namespace = typeof meta.namespace === "string" ? meta.namespace : "default";
    const name = typeof meta.name === "string" ? meta.name : "";
    const key = `${namespace}/${name}`;
    const existing = this.#objects.get(key);
    const rv = ++this.#rv;
    const { status: _ignored, ...rest } = structuredClone(manifest);
    let obj: Obj;
    if (!existing) {
      obj = {
        ...rest,
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: {
          ...meta,
          namespace,
          name,
          uid: randomUUID(),
          generation: 1,
          resourceVersion: String(rv),
          creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        },
      };
    } else {
      const specChanged = !isDeepStrictEqual(existing.spec, rest.spec);
      obj = {
        ...rest,
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: {
          ...existing.metadata,
          labels: meta.labels,
          annotations: meta.annotations,
          generation: Number(existing.metadata.generation) + (specChanged ? 1 : 0),
          resourceVersion: String(rv),
        },
        ...(existing.status === undefined ? {} : { status: existing.status }),
      };
    }
    this.#objects.set(key, obj);
    this.#emit({ rv, type: existing ? "MODIFIED" : "ADDED", object: obj });
    return structuredClone(obj);
  }

  delete(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    const existing = this.#objects.get(key);
    if (!existing) return false;
    this.#objects.delete(key);
    const rv = ++this.#rv;
    const object = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(rv) } };
    this.#emit({ rv, type: "DELETED", object });
    return true;
  }

  /** PATCH .../status with a merge patch: only status changes; a no-op writes nothing. */
  patchStatus(namespace: string, name: string, patch: unknown): Obj {
    const existing = this.#objects.get(`${namespace}/${name}`);
    if (!existing) {
      throw new StatusError(404, "NotFound", `tokenscopes.tokenscope.dev "${name}" not found`);
    }
    const wanted =
      isRecord(patch) && isRecord(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (wanted !== undefined && wanted !== existing.metadata.resourceVersion) {
      throw new StatusError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on tokenscopes.tokenscope.dev "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    const status = mergePatch(existing.status, isRecord(patch) ? patch.status : undefined);
    if (isDeepStrictEqual(status, existing.status)) return structuredClone(existing);
    const rv = ++this.#rv;
    const obj: Obj = {
      ...existing,
      metadata: { ...existing.metadata, resourceVersion: String(rv) },
      status,
    };
    this.#objects.set(`${namespace}/${name}`, obj);
    this.#emit({ rv, type: "MODIFIED", object: obj });
    return structuredClone(obj);
  }

  #emit(event: StoredEvent): void {
    this.#history.push(event);
    for (const listener of this.#listeners) listener(event);
  }
}
