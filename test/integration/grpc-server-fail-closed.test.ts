// The gRPC server's own failure paths answer explicit denies, never a gRPC error an Envoy with
// failure_mode_allow would let through: a check that rejects, a decision that cannot become a
// response, and bytes that are not a CheckRequest. The server runs on a loopback port; the client
// is the tests' Envoy stand-in.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import type { CheckService } from "../../src/check/check-service.ts";
import type { CheckView } from "../../src/envoy/from-check-request.ts";
import { startGrpcServer } from "../../src/envoy/grpc-server.ts";
import { checkMethod } from "../../src/envoy/protos.ts";
import { checkClient } from "../harness/check-client.ts";

const CHECK = checkMethod();

const BROKEN_CHECKS: [string, CheckService][] = [
  ["a check that rejects", () => Promise.reject(new Error("the check service broke"))],
  [
    // No such reason: toCheckResponse has nothing to answer it with and throws.
    "a decision that cannot become a response",
    () =>
      Promise.resolve({
        decision: { allowed: false, reason: "no_such_reason" as "missing_token" },
        namespace: undefined,
      }),
  ],
];

for (const [name, check] of BROKEN_CHECKS) {
  test(`${name} is answered with the store_unavailable deny, and reported`, async () => {
    const errors: unknown[] = [];
    const server = await startGrpcServer({
      addr: "127.0.0.1:0",
      check,
      onInternalError: (err) => errors.push(err),
    });
    const client = checkClient(server.port);
    try {
      // A deadline: a call never answered fails here rather than hanging the suite.
      const response = await client.check({}, 5000);
      assert.equal(response.status?.code, 14, "UNAVAILABLE");
      assert.equal(response.status.message, "store_unavailable");
      assert.equal(response.denied_response?.status?.code, "ServiceUnavailable");
      assert.equal(response.ok_response, undefined);
      assert.equal(errors.length, 1);
    } finally {
      client.close();
      await server.close(1000);
    }
  });
}

test("bytes that are not a CheckRequest reach the check as a request without a token", async () => {
  const seen: CheckView[] = [];
  const server = await startGrpcServer({
    addr: "127.0.0.1:0",
    check: (view) => {
      seen.push(view);
      return Promise.resolve({
        decision: { allowed: false, reason: "missing_token" },
        namespace: undefined,
      });
    },
    onInternalError: () => undefined,
  });
  const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  try {
    // attributes (field 1) declared 200 bytes long, 1 byte present: truncated.
    const truncated = Buffer.from([0x0a, 0xc8, 0x01, 0x00]);
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest(
        CHECK.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        truncated,
        (err, value) =>
          err || value === undefined ? reject(err ?? new Error("no reply")) : resolve(value),
      );
    });
    const response = CHECK.responseDeserialize(bytes) as { status?: { message?: string } };
    assert.equal(response.status?.message, "missing_token");
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0]?.authorization, []);
  } finally {
    client.close();
    await server.close(1000);
  }
});
