import { test } from "node:test";
import assert from "node:assert/strict";
import type { Decision } from "../../src/domain/decide.ts";
import { EncodedResponses } from "../../src/envoy/encoded-responses.ts";
import { authorizationService } from "../../src/envoy/protos.ts";
import { toCheckResponse } from "../../src/envoy/to-check-response.ts";

const check = authorizationService().Check;
if (check === undefined) throw new Error("no Check method");
const encode = (response: object): Buffer => check.responseSerialize(response);
const token = { id: "AbCdEfGhIjKl", scope: "shop/orders", owner: "team-a" };

const DECISIONS: [string, Decision][] = [
  ["an allow", { allowed: true, reason: "ok", token, scopeNamespace: "shop" }],
  [
    "a DryRun allow",
    { allowed: true, reason: "ok", token, scopeNamespace: "shop", dryRunDeny: "route_not_allowed" },
  ],
  [
    "another owner",
    { allowed: true, reason: "ok", token: { ...token, owner: "b" }, scopeNamespace: "shop" },
  ],
  ["a 401 deny", { allowed: false, reason: "unknown_token" }],
  ["a 403 deny naming its token", { allowed: false, reason: "route_not_allowed", token }],
  ["a 503 deny", { allowed: false, reason: "store_unavailable" }],
  ["a rate-limited deny", { allowed: false, reason: "rate_limited", token, retryAfterMs: 1500 }],
];

for (const [name, decision] of DECISIONS) {
  test(`a reused response is the encoding of the decision's own response: ${name}`, () => {
    const responses = new EncodedResponses(encode);
    const expected = encode(toCheckResponse(decision));
    assert.deepEqual(responses.for(decision), expected);
    assert.deepEqual(responses.for(decision), expected, "the second answer, reused, is the same");
  });
}

test("every decision that differs in what the response says gets its own bytes", () => {
  const responses = new EncodedResponses(encode);
  const seen = new Set(DECISIONS.map(([, d]) => responses.for(d).toString("hex")));
  assert.equal(seen.size, DECISIONS.length);
});

test("free-text fields cannot run into each other in the reuse key", () => {
  const responses = new EncodedResponses(encode);
  const a: Decision = {
    allowed: true,
    reason: "ok",
    token: { id: token.id, scope: "ns/a", owner: "1:b" },
    scopeNamespace: "ns",
  };
  const b: Decision = {
    allowed: true,
    reason: "ok",
    token: { id: token.id, scope: "ns/a1", owner: ":b" },
    scopeNamespace: "ns",
  };
  assert.deepEqual(responses.for(a), encode(toCheckResponse(a)));
  assert.deepEqual(responses.for(b), encode(toCheckResponse(b)));
});

test("rate-limited answers are encoded each time and never kept", () => {
  const responses = new EncodedResponses(encode);
  const limited = (ms: number): Decision => ({
    allowed: false,
    reason: "rate_limited",
    token,
    retryAfterMs: ms,
  });
  assert.notDeepEqual(responses.for(limited(1000)), responses.for(limited(5000)));
  assert.equal(responses.size, 0);
});

/** The encoder, counting its calls. */
function countingEncode() {
  const counted = { calls: 0, encode: (r: object) => (counted.calls++, encode(r)) };
  return counted;
}

const allowFor = (owner: string): Decision => ({
  allowed: true,
  reason: "ok",
  token: { ...token, owner },
  scopeNamespace: "shop",
});

test("the number of kept responses is capped, oldest out first", () => {
  const counter = countingEncode();
  const responses = new EncodedResponses(counter.encode, 3);
  const first = responses.for(allowFor("o0"));
  for (let i = 1; i < 10; i++) responses.for(allowFor(`o${i}`));
  assert.equal(responses.size, 3);
  assert.equal(counter.calls, 10);
  responses.for(allowFor("o9"));
  assert.equal(counter.calls, 10, "kept: not encoded again");
  const again = responses.for(allowFor("o0"));
  assert.equal(counter.calls, 11, "evicted: encoded again");
  assert.deepEqual(again, first);
});

test("tokens that come round in turn are encoded once each while they fit the table", () => {
  // The bench's shape: 10,000 tokens in rotation and a few deny reasons between them.
  const counter = countingEncode();
  const responses = new EncodedResponses(counter.encode);
  const decisions = Array.from({ length: 10_000 }, (_, i) => allowFor(`o${i}`));
  for (let round = 0; round < 3; round++) {
    decisions.forEach((d, i) => {
      assert.deepEqual(responses.for(d), encode(toCheckResponse(d)));
      if (i % 9 === 0) responses.for({ allowed: false, reason: "unknown_token" });
    });
  }
  assert.equal(counter.calls, 10_001);
});
