// Decision → the HTTP answer each proxy expects (SPEC §5b): 200 with the x-tokenscope-* headers
// for the proxy to copy upstream, or the deny status of SPEC §4 with its headers and JSON body.
// Only the decision goes into a response: nothing a client sent is ever echoed back as trusted.
import type { Decision } from "../domain/decide.ts";
import { retryAfterSeconds } from "../domain/rate-limit.ts";
import { REASON_INFO } from "../domain/reasons.ts";
import {
  denyBody,
  HEADER_DRY_RUN,
  HEADER_OWNER,
  HEADER_REASON,
  HEADER_SCOPE,
  HEADER_TOKEN_ID,
  wwwAuthenticate,
} from "../envoy/to-check-response.ts";
import type { Dialect } from "./dialect.ts";

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Envoy's HTTP authorization service removes the request headers listed here (comma-separated). */
const ENVOY_REMOVE = "x-envoy-auth-headers-to-remove";
/** nginx auth_request never passes the answer's body on: the message travels as a header. */
const HEADER_ERROR = "x-tokenscope-error";

export function toHttpResponse(decision: Decision, dialect: Dialect): HttpAnswer {
  const headers: Record<string, string> = { "cache-control": "no-store" };
  if (decision.allowed) {
    headers[HEADER_TOKEN_ID] = decision.token.id;
    headers[HEADER_SCOPE] = decision.token.scope;
    headers[HEADER_OWNER] = decision.token.owner;
    if (decision.dryRunDeny) headers[HEADER_DRY_RUN] = decision.dryRunDeny;
    if (dialect === "envoy") {
      headers[ENVOY_REMOVE] = decision.dryRunDeny
        ? "authorization"
        : `authorization, ${HEADER_DRY_RUN}`;
    }
    return { status: 200, headers, body: "" };
  }
  const info = REASON_INFO[decision.reason];
  headers[HEADER_REASON] = decision.reason;
  headers["content-type"] = "application/json";
  if (info.httpStatus === 401) headers["www-authenticate"] = wwwAuthenticate(decision.reason);
  if (info.httpStatus === 503) headers["retry-after"] = "1";
  if (decision.retryAfterMs !== undefined) {
    headers["retry-after"] = String(retryAfterSeconds(decision.retryAfterMs));
  }
  if (dialect === "nginx") headers[HEADER_ERROR] = info.message;
  return { status: info.httpStatus, headers, body: denyBody(decision.reason, info.message) };
}

/** Any path that names no authorization endpoint: a misconfigured proxy, never an allow. */
export function unknownEndpoint(): HttpAnswer {
  const message =
    "no authorization endpoint here: use /envoy/ns/<namespace>/…, /nginx/ns/<namespace> or /traefik/ns/<namespace>";
  return {
    status: 404,
    headers: {
      "cache-control": "no-store",
      "content-type": "application/json",
      [HEADER_REASON]: "unknown_namespace",
    },
    body: denyBody("unknown_namespace", message),
  };
}
