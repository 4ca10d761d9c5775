import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decide,
  isDecision,
  readCredential,
  type DecisionInput,
  type RecordLookup,
} from "../../src/domain/decide.ts";
import { compileTokenScope } from "../../src/domain/scope.ts";
import { DEFAULT_MAX_TTL_MS, type ScopeEntry } from "../../src/domain/scope-types.ts";
import {
  formatToken,
  hashSecret,
  parseToken,
  sealRecord,
  type ParsedToken,
} from "../../src/domain/token.ts";
import type { TokenRecord } from "../../src/domain/token-record.ts";
import { resolveNamespace } from "../../src/domain/namespace.ts";

const KEY = Buffer.alloc(32, 1);
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const HOUR = 3_600_000;

function scopeManifest(
  overrides: Record<string, unknown> = {},
  spec: Record<string, unknown> = {},
) {
  return {
    apiVersion: "tokenscope.dev/v1alpha1",
    kind: "TokenScope",
    metadata: { name: "reports-read", namespace: "prod", generation: 1 },
    spec: {
      owner: "team-analytics",
      rules: [
        {
          hosts: ["reports.prod.svc.cluster.local"],
          paths: ["/v1/reports", "/v1/reports/*"],
          methods: ["GET", "HEAD"],
        },
      ],
      sources: { cidrs: ["10.20.0.0/16", "fd00::/8"] },
      ...spec,
    },
    ...overrides,
  };
}

function compiled(spec: Record<string, unknown> = {}): ScopeEntry {
  const entry = compileTokenScope(scopeManifest({}, spec), { maxTTLCapMs: DEFAULT_MAX_TTL_MS });
  assert.ok(entry.ready, JSON.stringify(entry));
  return entry;
}

const token: ParsedToken = { environment: "prod", id: "AbCdEfGhIjKl", secret: "s".repeat(32) };
const bearer = `Bearer ${formatToken(token.environment, token.id, token.secret)}`;

const record: TokenRecord = sealRecord(KEY, {
  id: token.id,
  hash: hashSecret(KEY, token),
  scope: "prod/reports-read",
  owner: "alice",
  environment: "prod",
  labels: {},
  description: "",
  createdAt: T0,
  createdBy: "test",
  notBefore: T0,
  expiresAt: T0 + 24 * HOUR,
});

const allowedInput: DecisionInput = {
  token,
  lookup: { found: true, record },
  hmacKey: KEY,
  now: T0 + HOUR,
  scope: compiled(),
  namespace: "prod",
  route: {
    host: "reports.prod.svc.cluster.local:8080",
    path: "/v1/reports/2026?x=1",
    method: "GET",
  },
  source: { address: "10.20.3.4" },
};

describe("credential steps (no store needed)", () => {
  const rows: [string, string[], string][] = [
    ["no authorization header is missing_token", [], "missing_token"],
    ["a Basic credential is missing_token", ["Basic dXNlcjpwYXNz"], "missing_token"],
    ["an empty Bearer is malformed_token", ["Bearer "], "malformed_token"],
    [
      "a token with a bad checksum is malformed_token",
      [bearer.slice(0, -1) + "x"],
      "malformed_token",
    ],
    ["two authorization headers are malformed_token", [bearer, bearer], "malformed_token"],
    ["Envoy-joined duplicates are malformed_token", [`${bearer},${bearer}`], "malformed_token"],
    [
      "a staging token is denied in production",
      [`Bearer ${formatToken("staging", token.id, token.secret)}`],
      "environment_mismatch",
    ],
  ];
  for (const [name, auth, reason] of rows) {
    it(name, () => {
      const result = readCredential(auth, "prod");
      assert.ok(isDecision(result));
      assert.equal(result.allowed, false);
      assert.equal(result.reason, reason);
      assert.equal(result.token, undefined, "nothing names a token before its secret is verified");
    });
  }

  it("the Bearer scheme is case-insensitive and surrounding blanks are tolerated", () => {
    for (const h of [
      bearer,
      bearer.replace("Bearer", "bearer") + " ",
      bearer.replace("Bearer ", "BEARER \t"),
    ]) {
      const result = readCredential([h], "prod");
      assert.ok(!isDecision(result), h);
      assert.deepEqual(result, parseToken(bearer.slice(7)));
    }
  });
});

describe("the decision, in SPEC order", () => {
  const rows: [string, Partial<DecisionInput>, string][] = [
    ["a valid token on an allowed route is allowed", {}, "ok"],
    [
      "the store not answering is store_unavailable",
      { lookup: { unavailable: true } },
      "store_unavailable",
    ],
    ["no record is unknown_token", { lookup: { found: false } }, "unknown_token"],
    [
      "a record pointed at another scope without the key is unknown_token",
      { lookup: { found: true, record: { ...record, scope: "prod/payments-admin" } } },
      "unknown_token",
    ],
    [
      "a record whose lifetime was stretched without the key is unknown_token",
      { lookup: { found: true, record: { ...record, expiresAt: record.expiresAt + HOUR } } },
      "unknown_token",
    ],
    [
      "a record without a seal is unknown_token",
      { lookup: { found: true, record: { ...record, seal: undefined } } },
      "unknown_token",
    ],
    [
      "a wrong secret is unknown_token",
      { token: { ...token, secret: "t".repeat(32) } },
      "unknown_token",
    ],
    [
      "a hash made with another key is unknown_token",
      { hmacKey: Buffer.alloc(32, 2) },
      "unknown_token",
    ],
    ["a revoked token is denied", { lookup: found({ revokedAt: T0 + HOUR - 1 }) }, "revoked"],
    [
      "revocation wins over expiry",
      { lookup: found({ revokedAt: T0 }), now: T0 + 48 * HOUR },
      "revoked",
    ],
    [
      "a rotated-out token works until its grace ends",
      { lookup: found({ replacedBy: "x".repeat(12), graceUntil: T0 + HOUR + 1 }) },
      "ok",
    ],
    [
      "a rotated-out token is denied at graceUntil exactly",
      { lookup: found({ replacedBy: "x".repeat(12), graceUntil: T0 + HOUR }) },
      "rotated",
    ],
    ["one millisecond before expiry is allowed", { now: T0 + 24 * HOUR - 1 }, "ok"],
    ["expiry is exclusive: at expiresAt the token is expired", { now: T0 + 24 * HOUR }, "expired"],
    ["one millisecond before notBefore is not_yet_valid", { now: T0 - 1 }, "not_yet_valid"],
    ["at notBefore exactly the token is valid", { now: T0 }, "ok"],
    ["a deleted scope is scope_not_found", { scope: undefined }, "scope_not_found"],
    [
      "a scope outside the watched namespace (a sidecar) is namespace_mismatch",
      { scope: undefined, scopeOutOfView: true },
      "namespace_mismatch",
    ],
    [
      "an invalid scope is scope_not_ready",
      {
        scope: {
          ready: false,
          key: "prod/reports-read",
          namespace: "prod",
          name: "reports-read",
          problems: [],
        },
      },
      "scope_not_ready",
    ],
    [
      "no destination namespace is unknown_namespace",
      { namespace: undefined },
      "unknown_namespace",
    ],
    [
      "a prod scope is denied for a staging destination",
      { namespace: "staging" },
      "namespace_mismatch",
    ],
    [
      "a source outside the CIDRs is source_not_allowed",
      { source: { address: "10.21.0.1" } },
      "source_not_allowed",
    ],
    ["an IPv6 source inside fd00::/8 is allowed", { source: { address: "fd12::1" } }, "ok"],
    ["no source address is source_not_allowed", { source: {} }, "source_not_allowed"],
    [
      "a read-scoped token is denied on POST",
      { route: { ...allowedInput.route, method: "POST" } },
      "route_not_allowed",
    ],
    [
      "another host is route_not_allowed",
      { route: { ...allowedInput.route, host: "orders.prod.svc.cluster.local" } },
      "route_not_allowed",
    ],
    [
      "/v10 is not under /v1/reports/*",
      { route: { ...allowedInput.route, path: "/v1/reportsX" } },
      "route_not_allowed",
    ],
    [
      "a dot-segment escape is route_not_allowed",
      { route: { ...allowedInput.route, path: "/v1/reports/../admin" } },
      "route_not_allowed",
    ],
  ];
  for (const [name, patch, reason] of rows) {
    it(name, () => {
      const d = decide({ ...allowedInput, ...patch });
      assert.equal(d.reason, reason);
      assert.equal(d.allowed, reason === "ok");
    });
  }

  it("the first failure is the reason: an expired token in the wrong namespace is expired", () => {
    const d = decide({
      ...allowedInput,
      now: T0 + 25 * HOUR,
      namespace: "staging",
      route: { ...allowedInput.route, method: "DELETE" },
    });
    assert.equal(d.reason, "expired");
  });

  it("a deny after verification names the token; before it, never", () => {
    const late = decide({ ...allowedInput, namespace: "staging" });
    assert.deepEqual(late.token, { id: token.id, scope: "prod/reports-read", owner: "alice" });
    const early = decide({ ...allowedInput, lookup: { found: false } });
    assert.equal(early.token, undefined);
  });

  it("a DryRun scope allows a would-deny and reports it", () => {
    const d = decide({
      ...allowedInput,
      scope: compiled({ mode: "DryRun" }),
      route: { ...allowedInput.route, method: "POST" },
    });
    assert.equal(d.allowed, true);
    assert.equal(d.dryRunDeny, "route_not_allowed");
  });

  it("a DryRun scope still denies an invalid token", () => {
    const dry = compiled({ mode: "DryRun" });
    for (const patch of [
      { lookup: found({ revokedAt: T0 }) },
      { lookup: { found: false } as RecordLookup },
      { now: T0 + 48 * HOUR },
    ]) {
      const d = decide({ ...allowedInput, scope: dry, ...patch });
      assert.equal(d.allowed, false);
    }
  });
});

describe("destination namespace", () => {
  const rows: [string, Parameters<typeof resolveNamespace>[0], string | undefined][] = [
    [
      "sidecar mode is authoritative",
      {
        serverNamespace: "prod",
        contextExtensionNamespace: "staging",
        destinationPrincipal: "spiffe://cluster.local/ns/dev/sa/x",
      },
      "prod",
    ],
    [
      "the route's context extension comes next",
      {
        contextExtensionNamespace: "staging",
        destinationPrincipal: "spiffe://cluster.local/ns/dev/sa/x",
      },
      "staging",
    ],
    [
      "the destination principal is the last resort",
      { destinationPrincipal: "spiffe://cluster.local/ns/dev/sa/x" },
      "dev",
    ],
    [
      "an invalid context extension is not silently skipped",
      {
        contextExtensionNamespace: "Prod!",
        destinationPrincipal: "spiffe://cluster.local/ns/dev/sa/x",
      },
      undefined,
    ],
    [
      "a principal that is not Istio-shaped names nothing",
      { destinationPrincipal: "spiffe://cluster.local/workload/x" },
      undefined,
    ],
    ["nothing trusted is unknown", {}, undefined],
  ];
  for (const [name, sources, expected] of rows) {
    it(name, () => assert.equal(resolveNamespace(sources), expected));
  }
});

/** The record with `patch`, sealed again as token issue would have sealed it. */
function found(patch: Partial<TokenRecord>): RecordLookup {
  return { found: true, record: sealRecord(KEY, { ...record, ...patch }) };
}
