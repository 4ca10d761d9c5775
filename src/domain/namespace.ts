// Where a request is going. Only trusted sources count (SPEC §4): the server's own namespace
// (sidecar mode), the route's context_extensions (set by the mesh operator in Envoy/Istio config)
// and the destination's mTLS identity. Never a request header, which the client controls.

const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, as Istio issues them.
const SPIFFE_NS_RE = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/;

export interface NamespaceSources {
  readonly serverNamespace?: string;
  readonly contextExtensionNamespace?: string;
  readonly destinationPrincipal?: string;
}

export function isNamespaceName(s: string): boolean {
  return DNS_LABEL_RE.test(s);
}

/** The destination namespace, or undefined when no trusted source names a valid one. */
export function resolveNamespace(sources: NamespaceSources): string | undefined {
  if (sources.serverNamespace) return sources.serverNamespace;
  const fromRoute = sources.contextExtensionNamespace;
  if (fromRoute !== undefined && fromRoute !== "") {
    // A set but invalid value is a config error: refuse rather than fall through to a weaker source.
    return isNamespaceName(fromRoute) ? fromRoute : undefined;
  }
  const principal = sources.destinationPrincipal;
  if (principal) {
    const ns = SPIFFE_NS_RE.exec(principal)?.[1];
    if (ns !== undefined && isNamespaceName(ns)) return ns;
  }
  return undefined;
}
