// Which proxy is asking, and for which namespace: read only from the URL path the proxy was
// configured with (SPEC §5b), never from a header a client could send through the proxy.
import { isNamespaceName } from "../domain/namespace.ts";

export type Dialect = "envoy" | "nginx" | "traefik";

export interface AuthzTarget {
  readonly dialect: Dialect;
  readonly namespace: string;
  /** Envoy only: the original request's path and query, as Envoy appended it to the prefix. */
  readonly originalPath?: string;
}

const ENVOY_RE = /^\/envoy\/ns\/([^/?#]+)(\/[^#]*)$/;
const FIXED_RE = /^\/(nginx|traefik)\/ns\/([^/?#]+)(?:\?[^#]*)?$/;

/**
 * The authorization endpoint a request target names, or undefined (404): an unknown dialect, a
 * namespace that is not a Kubernetes namespace name (no decoding: "%70rod" is not "prod"), or
 * an Envoy path without the original path after the prefix.
 */
export function parseAuthzTarget(url: string): AuthzTarget | undefined {
  const envoy = ENVOY_RE.exec(url);
  if (envoy) {
    const namespace = envoy[1] ?? "";
    if (!isNamespaceName(namespace)) return undefined;
    return { dialect: "envoy", namespace, originalPath: envoy[2] ?? "" };
  }
  const fixed = FIXED_RE.exec(url);
  if (!fixed) return undefined;
  const namespace = fixed[2] ?? "";
  if (!isNamespaceName(namespace)) return undefined;
  return { dialect: fixed[1] === "nginx" ? "nginx" : "traefik", namespace };
}
