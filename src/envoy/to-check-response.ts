// Decision → CheckResponse (SPEC §4). `status` is always set: Envoy reads an unset status as OK.
import type { Decision } from "../domain/decide.ts";
import { retryAfterSeconds } from "../domain/rate-limit.ts";
import { REASON_INFO, type GrpcCodeName } from "../domain/reasons.ts";

const GRPC_CODE: Readonly<Record<GrpcCodeName | "OK", number>> = {
  OK: 0,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
};

export const HEADER_REASON = "x-tokenscope-reason";
export const HEADER_TOKEN_ID = "x-tokenscope-token-id";
export const HEADER_SCOPE = "x-tokenscope-scope";
export const HEADER_OWNER = "x-tokenscope-owner";
export const HEADER_DRY_RUN = "x-tokenscope-dry-run-deny";

/** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction, by name (as proto-loader reads it). */
export type HeaderAppendAction =
  | "APPEND_IF_EXISTS_OR_ADD"
  | "ADD_IF_ABSENT"
  | "OVERWRITE_IF_EXISTS_OR_ADD"
  | "OVERWRITE_IF_EXISTS";

export interface HeaderValueOption {
  readonly header: { readonly key: string; readonly value: string };
  readonly append_action?: HeaderAppendAction;
}

/** The CheckResponses tokenscope sends, in proto-loader's keepCase shape (fields by proto name). */
export interface CheckResponseMessage {
  readonly status: { readonly code: number; readonly message: string };
  readonly ok_response?: {
    readonly headers: readonly HeaderValueOption[];
    readonly headers_to_remove: readonly string[];
  };
  readonly denied_response?: {
    readonly status: { readonly code: number };
    readonly headers: readonly HeaderValueOption[];
    readonly body: string;
  };
}

/** Overwrite, never append: a client cannot smuggle its own x-tokenscope-* values upstream. */
function setHeader(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" };
}

function addHeader(key: string, value: string): HeaderValueOption {
  return { header: { key, value } };
}

/** RFC 6750 challenge: no error code when no token was sent at all. */
export function wwwAuthenticate(reason: string): string {
  return reason === "missing_token"
    ? 'Bearer realm="tokenscope"'
    : `Bearer realm="tokenscope", error="invalid_token", error_description="${reason}"`;
}

export function denyBody(reason: string, message: string): string {
  return JSON.stringify({ error: message, reason });
}

export function toCheckResponse(decision: Decision): CheckResponseMessage {
  if (decision.allowed) {
    const headers = [
      setHeader(HEADER_TOKEN_ID, decision.token.id),
      setHeader(HEADER_SCOPE, decision.token.scope),
      setHeader(HEADER_OWNER, decision.token.owner),
    ];
    const remove = ["authorization"];
    if (decision.dryRunDeny) headers.push(setHeader(HEADER_DRY_RUN, decision.dryRunDeny));
    else remove.push(HEADER_DRY_RUN);
    return {
      status: { code: GRPC_CODE.OK, message: "" },
      ok_response: { headers, headers_to_remove: remove },
    };
  }
  const info = REASON_INFO[decision.reason];
  const headers = [
    addHeader(HEADER_REASON, decision.reason),
    addHeader("content-type", "application/json"),
  ];
  if (info.httpStatus === 401)
    headers.push(addHeader("www-authenticate", wwwAuthenticate(decision.reason)));
  if (info.httpStatus === 503) headers.push(addHeader("retry-after", "1"));
  if (decision.retryAfterMs !== undefined) {
    headers.push(addHeader("retry-after", String(retryAfterSeconds(decision.retryAfterMs))));
  }
  return {
    status: { code: GRPC_CODE[info.grpc], message: decision.reason },
    denied_response: {
      status: { code: info.httpStatus },
      headers,
      body: denyBody(decision.reason, info.message),
    },
  };
}
