// Stable decision reasons (SPEC §4). They are metric label values and log fields: never rename.
export const DENY_REASONS = [
  "missing_token",
  "malformed_token",
  "environment_mismatch",
  "unknown_token",
  "revoked",
  "rotated",
  "expired",
  "not_yet_valid",
  "scope_not_found",
  "scope_not_ready",
  "unknown_namespace",
  "namespace_mismatch",
  "source_not_allowed",
  "route_not_allowed",
  "rate_limited",
  "store_unavailable",
] as const;

export type DenyReason = (typeof DENY_REASONS)[number];
export type Reason = "ok" | DenyReason;

/** The gRPC code names of SPEC §4; converted to numbers at the wire edge. */
export type GrpcCodeName =
  "UNAUTHENTICATED" | "PERMISSION_DENIED" | "RESOURCE_EXHAUSTED" | "UNAVAILABLE";

export interface ReasonInfo {
  readonly httpStatus: number;
  readonly grpc: GrpcCodeName;
  readonly message: string;
}

export const REASON_INFO: Readonly<Record<DenyReason, ReasonInfo>> = {
  missing_token: {
    httpStatus: 401,
    grpc: "UNAUTHENTICATED",
    message: "no bearer token in the authorization header",
  },
  malformed_token: {
    httpStatus: 401,
    grpc: "UNAUTHENTICATED",
    message: "the token is not a well-formed tokenscope token",
  },
  environment_mismatch: {
    httpStatus: 403,
    grpc: "PERMISSION_DENIED",
    message: "the token belongs to another environment",
  },
  unknown_token: { httpStatus: 401, grpc: "UNAUTHENTICATED", message: "the token is not known" },
  revoked: { httpStatus: 401, grpc: "UNAUTHENTICATED", message: "the token has been revoked" },
  rotated: {
    httpStatus: 401,
    grpc: "UNAUTHENTICATED",
    message: "the token was rotated and its grace period is over",
  },
  expired: { httpStatus: 401, grpc: "UNAUTHENTICATED", message: "the token has expired" },
  not_yet_valid: {
    httpStatus: 401,
    grpc: "UNAUTHENTICATED",
    message: "the token is not valid yet",
  },
  scope_not_found: {
    httpStatus: 403,
    grpc: "PERMISSION_DENIED",
    message: "the token's scope does not exist",
  },
  scope_not_ready: {
    httpStatus: 403,
    grpc: "PERMISSION_DENIED",
    message: "the token's scope is not ready",
  },
  unknown_namespace: {
    httpStatus: 403,
    grpc: "PERMISSION_DENIED",
    message: "the destination namespace cannot be determined",
  },
  namespace_mismatch: {
    httpStatus: 403,
    grpc: "PERMISSION_DENIED",
    message: "the token's scope does not cover this namespace",
  },
  source_not_allowed: {
    httpStatus: 403,
    grpc: "PERMISSION_DENIED",
    message: "the token may not be used from this source",
  },
  route_not_allowed: {
    httpStatus: 403,
    grpc: "PERMISSION_DENIED",
    message: "the token's scope does not allow this host, path or method",
  },
  rate_limited: {
    httpStatus: 429,
    grpc: "RESOURCE_EXHAUSTED",
    message: "the token's rate limit is exceeded",
  },
  store_unavailable: {
    httpStatus: 503,
    grpc: "UNAVAILABLE",
    message: "the token store did not answer in time",
  },
};
