// Builds a CheckRequest the way Envoy's ext_authz filter populates one for an HTTP request
// (attributes.source/destination/request.http/context_extensions). Used by `tokenscope check`.
import { randomUUID } from "node:crypto";

export interface CheckRequestParams {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly token?: string;
  /** Route-level context_extensions["namespace"], as an Envoy route or Istio config sets it. */
  readonly namespace?: string;
  readonly sourceIp?: string;
  readonly sourcePrincipal?: string;
  readonly destinationPrincipal?: string;
  readonly extraHeaders?: Readonly<Record<string, string>>;
  /** Envoy's `encode_raw_headers: true`: headers in header_map with raw_value bytes. */
  readonly rawHeaders?: boolean;
}

export function buildCheckRequest(p: CheckRequestParams): Record<string, unknown> {
  const requestId = randomUUID();
  const headers: Record<string, string> = {
    ":authority": p.host,
    ":method": p.method,
    ":path": p.path,
    ":scheme": "http",
    "user-agent": "tokenscope-check",
    "x-forwarded-proto": "http",
    "x-request-id": requestId,
    ...(p.token === undefined ? {} : { authorization: `Bearer ${p.token}` }),
    ...p.extraHeaders,
  };
  const now = Date.now();
  const http: Record<string, unknown> = {
    id: requestId,
    method: p.method,
    path: p.path,
    host: p.host,
    scheme: "http",
    protocol: "HTTP/1.1",
  };
  if (p.rawHeaders) {
    http.header_map = {
      headers: Object.entries(headers).map(([key, value]) => ({
        key,
        raw_value: Buffer.from(value, "latin1"),
      })),
    };
  } else {
    http.headers = headers;
  }
  return {
    attributes: {
      source: {
        address: {
          socket_address: { address: p.sourceIp ?? "127.0.0.1", port_value: 40000 + (now % 20000) },
        },
        ...(p.sourcePrincipal ? { principal: p.sourcePrincipal } : {}),
      },
      destination: {
        address: { socket_address: { address: "127.0.0.1", port_value: 8080 } },
        ...(p.destinationPrincipal ? { principal: p.destinationPrincipal } : {}),
      },
      request: {
        time: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 },
        http,
      },
      ...(p.namespace ? { context_extensions: { namespace: p.namespace } } : {}),
    },
  };
}
