// The server's definition of Authorization/Check, built without proto-loader, against the one
// proto-loader builds from Envoy's official protos: the same path and streaming, requests read
// as proto-loader reads them, responses written as proto-loader writes them.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  authorizationServerDefinition,
  type CheckMethod,
} from "../../src/envoy/authorization-service.ts";
import { fromCheckRequest } from "../../src/envoy/from-check-request.ts";
import { checkMethod } from "../../src/envoy/protos.ts";
import { toCheckResponse } from "../../src/envoy/to-check-response.ts";
import { checkRequestFixture } from "../harness/fixtures.ts";

const ours: CheckMethod = authorizationServerDefinition().Check;
const theirs = checkMethod();
const TOKEN = "tks_prod_0123456789abcdefghijklmnop_secretsecretsecretsecret_abcdef";

test("Check has the path and streaming of Envoy's protos", () => {
  assert.equal(ours.path, "/envoy.service.auth.v3.Authorization/Check");
  assert.equal(ours.path, theirs.path);
  assert.equal(ours.requestStream, theirs.requestStream);
  assert.equal(ours.responseStream, theirs.responseStream);
  assert.equal(ours.originalName, theirs.originalName);
});

test("a CheckRequest is read as proto-loader reads it", () => {
  for (const name of ["istio-sidecar-get.json", "envoy-gateway-raw-headers.json"]) {
    const bytes = theirs.requestSerialize(checkRequestFixture(name, TOKEN));
    const view = ours.requestDeserialize(bytes);
    assert.deepEqual(view, fromCheckRequest(theirs.requestDeserialize(bytes)), name);
    assert.deepEqual(view.authorization, [`Bearer ${TOKEN}`], name);
  }
});

test("bytes that are not a CheckRequest are read as a request without a token", () => {
  const view = ours.requestDeserialize(Buffer.from([0x0a, 0x05, 0x01]));
  assert.deepEqual(view.authorization, []);
});

test("a response is written as proto-loader writes it", () => {
  const response = toCheckResponse({
    allowed: true,
    reason: "ok",
    token: { id: "AbCdEfGhIjKl", scope: "shop/orders", owner: "team-a" },
    scopeNamespace: "shop",
  });
  assert.deepEqual(ours.responseSerialize(response), theirs.responseSerialize(response));
});

test("the server's definition refuses to act as a client", () => {
  assert.throws(
    () => ours.requestSerialize(ours.requestDeserialize(Buffer.alloc(0))),
    /serves only/,
  );
  assert.throws(() => ours.responseDeserialize(Buffer.alloc(0)), /serves only/);
});
