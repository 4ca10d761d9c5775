// An authorization request over HTTP → the CheckView the gRPC path builds from a CheckRequest,
// so both transports share one decision. Pure: the server passes the parsed request in.
import type { CheckView } from "../envoy/from-check-request.ts";
import type { AuthzTarget } from "./dialect.ts";
import { resolveSourceAddress, type TrustedProxies } from "./source-address.ts";

export interface AuthzHttpRequest {
  readonly method: string;
  /** Header values by lowercase name, every occurrence kept (node's headersDistinct). */
  readonly headers: Readonly<Partial<Record<string, readonly string[]>>>;
  /** The TCP peer's address. */
  readonly peerAddress: string | undefined;
}

/** Where each dialect carries the original request's method, URI and host. */
const ORIGINAL_HEADERS = {
  nginx: { method: "x-original-method", uri: "x-original-uri", host: "x-original-host" },
  traefik: { method: "x-forwarded-method", uri: "x-forwarded-uri", host: "x-forwarded-host" },
} as const;

/**
 * Exactly one value, or "" (which matches no path): two values for one field would let the
 * proxy and tokenscope read different requests, so ambiguity denies instead of picking one.
 */
function single(req: AuthzHttpRequest, name: string): string {
  const values = req.headers[name];
  return values?.length === 1 ? (values[0] ?? "") : "";
}

export function fromHttpRequest(
  target: AuthzTarget,
  req: AuthzHttpRequest,
  trusted: TrustedProxies,
): CheckView {
  const route =
    target.dialect === "envoy"
      ? { method: req.method, path: target.originalPath ?? "", host: single(req, "host") }
      : {
          method: single(req, ORIGINAL_HEADERS[target.dialect].method),
          path: single(req, ORIGINAL_HEADERS[target.dialect].uri),
          host: single(req, ORIGINAL_HEADERS[target.dialect].host),
        };
  const address = resolveSourceAddress(
    req.peerAddress,
    { forwardedFor: req.headers["x-forwarded-for"] ?? [], realIp: req.headers["x-real-ip"] ?? [] },
    trusted,
  );
  return {
    authorization: req.headers.authorization ?? [],
    route,
    // Plain HTTP carries no mTLS identity of the caller: principal rules never match here.
    source: { address, principal: undefined },
    namespaceSources: { contextExtensionNamespace: target.namespace },
    requestId: single(req, "x-request-id") || undefined,
  };
}
