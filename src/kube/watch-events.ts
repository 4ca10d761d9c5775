// The TokenScope resource on the wire: object identity and watch events, parsed defensively.
// Pure: a line from the API server becomes a typed event or an explanation of why it is not one.

export const GROUP = "tokenscope.dev";
export const VERSION = "v1alpha1";
export const PLURAL = "tokenscopes";

/** A TokenScope as the API server sent it, with the identity fields checked. */
export interface ScopeObject {
  /** "namespace/name", the ScopeIndex key. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  /** metadata.generation; 0 when absent. */
  readonly generation: number;
  readonly raw: Readonly<Record<string, unknown>>;
}

/** A metav1.Status from an ERROR event or an error response. */
export interface ApiStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

export type WatchEvent =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly object: ScopeObject }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }
  | { readonly type: "ERROR"; readonly status: ApiStatus }
  | { readonly type: "invalid"; readonly why: string };

type Fields = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(obj: Fields | undefined, key: string): string | undefined {
  const v = obj && Object.hasOwn(obj, key) ? obj[key] : undefined;
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function metadataOf(value: unknown): Fields | undefined {
  if (!isRecord(value) || !Object.hasOwn(value, "metadata")) return undefined;
  const meta = value.metadata;
  return isRecord(meta) ? meta : undefined;
}

/** The object with its identity, or why it cannot be one of ours. */
export function toScopeObject(value: unknown): ScopeObject | { why: string } {
  const meta = metadataOf(value);
  const namespace = text(meta, "namespace");
  const name = text(meta, "name");
  const resourceVersion = text(meta, "resourceVersion");
  if (!isRecord(value) || !namespace || !name || !resourceVersion) {
    return { why: "object without metadata.namespace, .name and .resourceVersion" };
  }
  const gen = meta?.generation;
  return {
    key: `${namespace}/${name}`,
    namespace,
    name,
    resourceVersion,
    generation: typeof gen === "number" && Number.isSafeInteger(gen) && gen > 0 ? gen : 0,
    raw: value,
  };
}

/** A metav1.Status body (or anything else) as code/reason/message. */
export function toApiStatus(value: unknown, httpStatus?: number): ApiStatus {
  const obj = isRecord(value) ? value : undefined;
  const code = obj?.code;
  return {
    code: typeof code === "number" ? code : (httpStatus ?? 0),
    reason: text(obj, "reason") ?? "",
    message: text(obj, "message") ?? "",
  };
}

export function parseWatchEvent(line: string): WatchEvent {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return { type: "invalid", why: "not JSON" };
  }
  if (!isRecord(event)) return { type: "invalid", why: "not an object" };
  const { type, object } = event;
  switch (type) {
    case "ADDED":
    case "MODIFIED":
    case "DELETED": {
      const parsed = toScopeObject(object);
      return "why" in parsed ? { type: "invalid", why: parsed.why } : { type, object: parsed };
    }
    case "BOOKMARK": {
      const rv = text(metadataOf(object), "resourceVersion");
      return rv ? { type, resourceVersion: rv } : { type: "invalid", why: "bookmark without rv" };
    }
    case "ERROR":
      return { type, status: toApiStatus(object) };
    default:
      return { type: "invalid", why: `unknown event type ${JSON.stringify(type)}` };
  }
}
