// The ext_authz gRPC server: envoy.service.auth.v3.Authorization/Check and grpc.health.v1.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { CheckService } from "../check/check-service.ts";
import type { Decision } from "../domain/decide.ts";
import type { CheckView } from "./from-check-request.ts";
import { toCheckResponse, type CheckResponseMessage } from "./to-check-response.ts";
import { AUTHORIZATION_SERVICE, authorizationServerDefinition } from "./authorization-service.ts";

export { AUTHORIZATION_SERVICE };

/** Envoy's own default max request headers is 60 KiB; leave room for a few more. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * The check service never rejects, nor does a decision fail to become a response; if either
 * happens, the answer is this deny, not an error (or no answer) that an Envoy set to
 * failure_mode_allow would let through.
 */
const FAILED_CHECK = toCheckResponse({ allowed: false, reason: "store_unavailable" });

/**
 * The response to a decision. Encoded for each answer (check-response-wire.ts, under 1 µs for an
 * allow): a table of encoded answers saved ~0.5 µs per Check for ~13 MB of heap at 100k tokens.
 */
function responseTo(decision: Decision, onError: (err: unknown) => void): CheckResponseMessage {
  try {
    return toCheckResponse(decision);
  } catch (err) {
    onError(err);
    return FAILED_CHECK;
  }
}

export interface GrpcServer {
  readonly port: number;
  setServing(serving: boolean): void;
  /** Stops accepting, lets in-flight checks finish (bounded by graceMs). */
  close(graceMs: number): Promise<void>;
}

export async function startGrpcServer(opts: {
  addr: string;
  check: CheckService;
  onInternalError: (err: unknown) => void;
}): Promise<GrpcServer> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": 64 * 1024,
    "grpc.max_metadata_size": 64 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
    // Channelz bookkeeping runs on every call (about 4% of a Check's CPU in a profile) and
    // nothing here serves the channelz service.
    "grpc.enable_channelz": 0,
  });
  const health = new HealthImplementation({
    "": "NOT_SERVING",
    [AUTHORIZATION_SERVICE]: "NOT_SERVING",
  });
  health.addToServer(server);
  server.addService(authorizationServerDefinition(opts.onInternalError), {
    Check(
      call: grpc.ServerUnaryCall<CheckView, CheckResponseMessage>,
      callback: grpc.sendUnaryData<CheckResponseMessage>,
    ) {
      opts.check(call.request).then(
        (result) => {
          callback(null, responseTo(result.decision, opts.onInternalError));
        },
        (err: unknown) => {
          opts.onInternalError(err);
          callback(null, FAILED_CHECK);
        },
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.addr, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(new Error(`cannot listen for gRPC on ${opts.addr}: ${err.message}`));
      else resolve(p);
    });
  });
  return {
    port,
    setServing(serving) {
      const status = serving ? "SERVING" : "NOT_SERVING";
      health.setStatus("", status);
      health.setStatus(AUTHORIZATION_SERVICE, status);
    },
    close(graceMs) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
