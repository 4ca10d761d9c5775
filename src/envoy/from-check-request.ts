// CheckRequest (as decoded by proto-loader with keepCase) → what the decision needs.
// Envoy sends headers either in `headers` (a map; duplicates joined with ",") or, with
// `encode_raw_headers: true`, in `header_map` (repeated, values in raw_value bytes).
import type { RequestRoute, RequestSource } from "../domain/scope-types.ts";
import type { NamespaceSources } from "../domain/namespace.ts";

export interface CheckView {
  readonly authorization: readonly string[];
  readonly route: RequestRoute;
  readonly source: RequestSource;
  readonly namespaceSources: Omit<NamespaceSources, "serverNamespace">;
  readonly requestId: string | undefined;
}

interface HeaderValue {
  key?: string;
  value?: string;
  raw_value?: Uint8Array;
}

interface HttpRequest {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: { headers?: HeaderValue[] };
  path?: string;
  host?: string;
}

interface Peer {
  address?: { socket_address?: { address?: string } };
  principal?: string;
}

interface DecodedCheckRequest {
  attributes?: {
    source?: Peer;
    destination?: Peer;
    request?: { http?: HttpRequest };
    context_extensions?: Record<string, string>;
  };
}

function str(x: unknown): string | undefined {
  return typeof x === "string" ? x : undefined;
}

function headerValue(h: HeaderValue): string {
  if (h.raw_value && h.raw_value.length > 0) return Buffer.from(h.raw_value).toString("latin1");
  return h.value ?? "";
}

/** All values of one header (lowercase name), from header_map when Envoy used it. */
export function headerValues(http: HttpRequest | undefined, name: string): string[] {
  const raw = http?.header_map?.headers;
  if (raw && raw.length > 0) {
    const out: string[] = [];
    for (const h of raw) if (h.key?.toLowerCase() === name) out.push(headerValue(h));
    return out;
  }
  const v = http?.headers?.[name];
  return typeof v === "string" ? [v] : [];
}

export function fromCheckRequest(request: unknown): CheckView {
  const attrs = (request as DecodedCheckRequest | null | undefined)?.attributes;
  const http = attrs?.request?.http;
  const host =
    str(http?.host) || headerValues(http, ":authority")[0] || headerValues(http, "host")[0];
  return {
    authorization: headerValues(http, "authorization"),
    route: {
      host: host ?? "",
      path: str(http?.path) || (headerValues(http, ":path")[0] ?? ""),
      method: str(http?.method) || (headerValues(http, ":method")[0] ?? ""),
    },
    source: {
      address: str(attrs?.source?.address?.socket_address?.address),
      principal: str(attrs?.source?.principal) || undefined,
    },
    namespaceSources: {
      contextExtensionNamespace: str(attrs?.context_extensions?.namespace),
      destinationPrincipal: str(attrs?.destination?.principal) || undefined,
    },
    requestId: str(http?.id) || headerValues(http, "x-request-id")[0],
  };
}
