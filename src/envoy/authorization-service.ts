// envoy.service.auth.v3.Authorization, server side, as grpc-js needs it: a path, unary, and the
// functions that turn bytes into a request and a response into bytes. Both are written by hand
// (check-request-wire.ts, check-response-wire.ts), so `serve` does not load Envoy's protos;
// the client side (`tokenscope check`, the tests' stand-in for Envoy) keeps proto-loader
// (protos.ts), and test/unit/authorization-service.test.ts holds the two definitions together.
import type * as grpc from "@grpc/grpc-js";
import { readCheckRequestFields } from "./check-request-wire.ts";
import { encodeCheckResponse } from "./check-response-wire.ts";
import { checkViewOf, type CheckView } from "./from-check-request.ts";
import { toCheckResponse, type CheckResponseMessage } from "./to-check-response.ts";

export const AUTHORIZATION_SERVICE = "envoy.service.auth.v3.Authorization";
export const CHECK_PATH = `/${AUTHORIZATION_SERVICE}/Check`;

/**
 * Check's message is read straight into the view a decision needs, not decoded whole. grpc-js
 * answers an undecodable message with INTERNAL, which an Envoy set to failure_mode_allow would
 * let through: unreadable bytes become an empty request instead, so the answer is an explicit
 * deny (missing_token) like any other request without a token.
 */
export function readCheckView(bytes: Buffer): CheckView {
  try {
    return checkViewOf(readCheckRequestFields(bytes));
  } catch {
    // Bytes that are not a CheckRequest carry no readable token: an empty request.
    return checkViewOf({ headerMapUsed: false });
  }
}

/** Answered when a response cannot be encoded: a deny, never an error (see readCheckView). */
const FAILED_ENCODING = encodeCheckResponse(
  toCheckResponse({ allowed: false, reason: "store_unavailable" }),
);

/**
 * A response's bytes; an encoder failure (a bug) answers a deny rather than INTERNAL, and is
 * reported: metrics and the audit line still carry the decision the response could not say.
 */
export function writeCheckResponse(
  response: CheckResponseMessage,
  onError: (err: unknown) => void = () => undefined,
): Buffer {
  try {
    return encodeCheckResponse(response);
  } catch (err) {
    onError(err);
    return FAILED_ENCODING;
  }
}

function clientSideOnly(): never {
  throw new Error(
    "this definition of Authorization/Check serves only; clients use src/envoy/check-client.ts",
  );
}

export type CheckMethod = grpc.MethodDefinition<CheckView, CheckResponseMessage>;

/** Assignable to grpc.ServiceDefinition; typed by method so that callers keep the types. */
export function authorizationServerDefinition(
  onEncodingError: (err: unknown) => void = () => undefined,
): { readonly Check: CheckMethod } {
  return {
    Check: {
      path: CHECK_PATH,
      requestStream: false,
      responseStream: false,
      originalName: "check",
      requestDeserialize: readCheckView,
      responseSerialize: (response) => writeCheckResponse(response, onEncodingError),
      requestSerialize: clientSideOnly,
      responseDeserialize: clientSideOnly,
    },
  };
}
