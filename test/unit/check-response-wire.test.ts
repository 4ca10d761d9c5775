// The hand-written CheckResponse encoder (src/envoy/check-response-wire.ts) against proto-loader's
// serializer on Envoy's official protos: the same bytes for every response toCheckResponse can
// build (every reason, allows with and without DryRun, rate limits, long and non-ASCII strings,
// thousands of seeded random decisions), and bytes proto-loader decodes back to the same object.
// Where the two must differ (a lone UTF-16 surrogate, which protobufjs writes as bytes that are
// not UTF-8 when the string is short), the encoder writes U+FFFD, as protobufjs does for long ones.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Decision, TokenIdentity } from "../../src/domain/decide.ts";
import { DENY_REASONS, REASON_INFO, type DenyReason } from "../../src/domain/reasons.ts";
import { encodeCheckResponse } from "../../src/envoy/check-response-wire.ts";
import { writeCheckResponse } from "../../src/envoy/authorization-service.ts";
import { checkMethod, httpStatusNumber } from "../../src/envoy/protos.ts";
import { toCheckResponse, type CheckResponseMessage } from "../../src/envoy/to-check-response.ts";
import { chance, int, pick, seededRng, type Rng } from "../fuzz/generators.ts";

const CHECK = checkMethod();
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const viaProtoLoader = (response: CheckResponseMessage): Buffer =>
  CHECK.responseSerialize(response);

/** What proto-loader decodes, in toCheckResponse's shape: HTTP status by number, no oneof name. */
function decoded(bytes: Buffer): unknown {
  const message = CHECK.responseDeserialize(bytes) as {
    http_response?: string;
    denied_response?: { status?: { code?: string | number } };
  };
  delete message.http_response;
  const status = message.denied_response?.status;
  if (status !== undefined) status.code = httpStatusNumber(status.code);
  return message;
}

function assertSameAsProtoLoader(decision: Decision, label: string): void {
  const response = toCheckResponse(decision);
  const bytes = encodeCheckResponse(response);
  assert.deepEqual(bytes, viaProtoLoader(response), label);
  assert.deepEqual(decoded(bytes), JSON.parse(JSON.stringify(response)), label);
}

const TOKEN: TokenIdentity = { id: "AbCdEfGhIjKl", scope: "shop/orders", owner: "team-a" };
const allow = (token: TokenIdentity, dryRunDeny?: DenyReason): Decision => ({
  allowed: true,
  reason: "ok",
  token,
  scopeNamespace: "shop",
  ...(dryRunDeny === undefined ? {} : { dryRunDeny }),
});

describe("CheckResponse bytes written by hand", () => {
  const table: [string, Decision][] = [
    ["an allow", allow(TOKEN)],
    ...DENY_REASONS.map((r): [string, Decision] => [`a DryRun allow (${r})`, allow(TOKEN, r)]),
    ...DENY_REASONS.map((r): [string, Decision] => [
      `a ${REASON_INFO[r].httpStatus} deny: ${r}`,
      { allowed: false, reason: r },
    ]),
    ...DENY_REASONS.map((r): [string, Decision] => [
      `a deny naming its token: ${r}`,
      { allowed: false, reason: r, token: TOKEN, scopeNamespace: "shop" },
    ]),
    ...[0, 1, 999, 1000, 1001, 59_999, 3_600_000, 2 ** 31, 2 ** 40].map(
      (ms): [string, Decision] => [
        `rate limited, retry after ${ms} ms`,
        { allowed: false, reason: "rate_limited", token: TOKEN, retryAfterMs: ms },
      ],
    ),
    ["an owner of 128 bytes (two-byte lengths)", allow({ ...TOKEN, owner: "o".repeat(128) })],
    ["a scope of 127 bytes", allow({ ...TOKEN, scope: "s".repeat(127) })],
    ["an owner of 16384 bytes (three-byte lengths)", allow({ ...TOKEN, owner: "o".repeat(16384) })],
    ["an owner of 20000 bytes, DryRun", allow({ ...TOKEN, owner: "x".repeat(20000) }, "revoked")],
    ["an owner with é (two bytes)", allow({ ...TOKEN, owner: "équipe-é" })],
    ["a scope with an emoji (a surrogate pair)", allow({ ...TOKEN, scope: "shop/😀-orders" })],
    ["three-byte characters", allow({ ...TOKEN, owner: "チーム\u0800\uffff\u07ff" })],
    ["the last code point", allow({ ...TOKEN, owner: "\u{10ffff}\u{10000}" })],
    ["a long non-ASCII owner", allow({ ...TOKEN, owner: "é😀ü".repeat(3000) })],
    ["an empty owner and scope", allow({ ...TOKEN, owner: "", scope: "" })],
  ];
  for (const [name, decision] of table) {
    it(`the same bytes as proto-loader: ${name}`, () => {
      assertSameAsProtoLoader(decision, name);
    });
  }

  it("int32 codes as protobufjs writes them, a negative one in ten bytes", () => {
    for (const code of [0, 1, 127, 128, 16_384, 2 ** 31 - 1, -1, -128, -(2 ** 31)]) {
      const response: CheckResponseMessage = {
        status: { code, message: "m" },
        denied_response: { status: { code }, headers: [], body: "" },
      };
      assert.deepEqual(encodeCheckResponse(response), viaProtoLoader(response), `code ${code}`);
    }
  });

  it("every append action is written as Envoy's enum number", () => {
    for (const action of [
      "APPEND_IF_EXISTS_OR_ADD",
      "ADD_IF_ABSENT",
      "OVERWRITE_IF_EXISTS_OR_ADD",
      "OVERWRITE_IF_EXISTS",
    ] as const) {
      const response: CheckResponseMessage = {
        status: { code: 0, message: "" },
        ok_response: {
          headers: [{ header: { key: "k", value: "v" }, append_action: action }],
          headers_to_remove: [],
        },
      };
      assert.deepEqual(encodeCheckResponse(response), viaProtoLoader(response), action);
    }
  });

  it(`random decisions: the same bytes as proto-loader (seed ${SEED})`, () => {
    const rng = seededRng(SEED);
    for (let i = 0; i < 5000; i++) {
      const decision = randomDecision(rng, false);
      assertSameAsProtoLoader(decision, `seed ${SEED} case ${i}: ${JSON.stringify(decision)}`);
    }
  });

  it(`random decisions with lone surrogates: U+FFFD, as protobufjs writes a well-formed string (seed ${SEED + 1})`, () => {
    const rng = seededRng(SEED + 1);
    for (let i = 0; i < 2000; i++) {
      const response = toCheckResponse(randomDecision(rng, true));
      const label = `seed ${SEED + 1} case ${i}: ${JSON.stringify(response)}`;
      const wellFormed = JSON.parse(JSON.stringify(response), (_, v: unknown) =>
        typeof v === "string" ? toWellFormed(v) : v,
      ) as CheckResponseMessage;
      const bytes = encodeCheckResponse(response);
      assert.deepEqual(bytes, viaProtoLoader(wellFormed), label);
      assert.deepEqual(decoded(bytes), JSON.parse(JSON.stringify(wellFormed)), label);
    }
  });

  it("a short string with a lone surrogate: protobufjs writes bytes that are not UTF-8; this does not", () => {
    const response = toCheckResponse(allow({ ...TOKEN, owner: "a\ud800b" }));
    const strict = new TextDecoder("utf-8", { fatal: true });
    const ours = encodeCheckResponse(response);
    const theirs = viaProtoLoader(response);
    assert.equal(ours.length, theirs.length, "the same length: only the surrogate's bytes differ");
    const at = ours.indexOf(Buffer.from("a\ufffdb"));
    assert.ok(at > 0, "here: U+FFFD");
    assert.equal(strict.decode(ours.subarray(at, at + 5)), "a\ufffdb");
    assert.deepEqual([...theirs.subarray(at, at + 5)], [0x61, 0xed, 0xa0, 0x80, 0x62], "CESU-8");
    assert.throws(() => strict.decode(theirs.subarray(at, at + 5)), /not valid/);
  });

  it("an encoder failure answers the fail-closed deny, not an error", () => {
    const broken = {
      status: { code: 0, message: "" },
      ok_response: { headers: [null], headers_to_remove: [] },
    } as unknown as CheckResponseMessage;
    assert.throws(() => encodeCheckResponse(broken));
    assert.deepEqual(
      decoded(writeCheckResponse(broken)),
      JSON.parse(JSON.stringify(toCheckResponse({ allowed: false, reason: "store_unavailable" }))),
    );
  });
});

/** String.prototype.toWellFormed (ES2024, beyond this project's TypeScript lib): U+FFFD for lone surrogates. */
const toWellFormed = (s: string): string =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");

/** Lengths around every boundary that changes the encoding: varint sizes and the native path. */
const LENGTHS = [0, 1, 2, 39, 40, 41, 63, 64, 65, 127, 128, 129, 300, 16_383, 16_384, 16_385];
const PIECES = ["a", "Z", "-", "/", "é", "\u07ff", "\u0800", "チ", "\uffff", "😀", "\u{10ffff}"];
const LONE = ["\ud800", "\udbff", "\udc00", "\udfff"];

function randomText(rng: Rng, lone: boolean): string {
  const target = chance(rng, 0.7) ? int(rng, 40) : pick(rng, LENGTHS);
  const ascii = chance(rng, 0.5);
  let s = "";
  while (s.length < target) {
    if (lone && chance(rng, 0.05)) s += pick(rng, LONE);
    else s += ascii ? String.fromCharCode(0x20 + int(rng, 95)) : pick(rng, PIECES);
  }
  return s;
}

function randomDecision(rng: Rng, lone: boolean): Decision {
  const token = (): TokenIdentity => ({
    id: randomText(rng, false),
    scope: randomText(rng, lone),
    owner: randomText(rng, lone),
  });
  if (chance(rng, 0.5))
    return allow(token(), chance(rng, 0.3) ? pick(rng, DENY_REASONS) : undefined);
  const reason = pick(rng, DENY_REASONS);
  return {
    allowed: false,
    reason,
    ...(chance(rng, 0.5) ? { token: token() } : {}),
    ...(reason === "rate_limited" || chance(rng, 0.1)
      ? { retryAfterMs: chance(rng, 0.5) ? int(rng, 100_000) : int(rng, 2 ** 40) }
      : {}),
  };
}
