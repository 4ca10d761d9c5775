// The ext_authz gRPC server: envoy.service.auth.v3.Authorization/Check and grpc.health.v1.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { CheckService } from "../check/check-service.ts";
import { checkViewOf, type CheckView } from "./from-check-request.ts";
import { readCheckRequestFields } from "./check-request-wire.ts";
import { toCheckResponse } from "./to-check-response.ts";
import { EncodedResponses } from "./encoded-responses.ts";
import { authorizationService } from "./protos.ts";

export const AUTHORIZATION_SERVICE = "envoy.service.auth.v3.Authorization";

/** Envoy's own default max request headers is 60 KiB; leave room for a few more. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Check's message is read straight into the view a decision needs (check-request-wire.ts), not
 * decoded whole. grpc-js answers an undecodable message with INTERNAL, which an Envoy set to
 * failure_mode_allow would let through: unreadable bytes become an empty request instead, so the
 * answer is an explicit deny (missing_token) like any other request without a token.
 */
function checkReading(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const check = service.Check;
  if (check === undefined) throw new Error("the Authorization service has no Check");
  const encode = check.responseSerialize;
  return {
    Check: {
      ...check,
      // A response already encoded (EncodedResponses) goes out as it is.
      responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : encode(value)),
      requestDeserialize: (bytes: Buffer): CheckView => {
        try {
          return checkViewOf(readCheckRequestFields(bytes));
        } catch {
          // Bytes that are not a CheckRequest carry no readable token: an empty request.
          return checkViewOf({ headerMapUsed: false });
        }
      },
    },
  };
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
  const service = checkReading(authorizationService());
  const encodeResponse = (service.Check as grpc.MethodDefinition<unknown, unknown>)
    .responseSerialize;
  const responses = new EncodedResponses((response) => encodeResponse(response));
  server.addService(service, {
    Check(call: grpc.ServerUnaryCall<CheckView, unknown>, callback: grpc.sendUnaryData<unknown>) {
      opts.check(call.request).then(
        (result) => {
          callback(null, responses.for(result.decision));
        },
        (err: unknown) => {
          // The check service never rejects; if it somehow does, answer a deny, not an error
          // Envoy might be configured to treat as allow (failure_mode_allow).
          opts.onInternalError(err);
          callback(null, toCheckResponse({ allowed: false, reason: "store_unavailable" }));
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
