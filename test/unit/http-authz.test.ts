// The HTTP authorization adapter, pure parts: which endpoint a path names, where the source
// address comes from behind proxies, and what each dialect's request means.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseAuthzTarget, type AuthzTarget } from "../../src/http-authz/dialect.ts";
import { fromHttpRequest } from "../../src/http-authz/from-http-request.ts";
import {
  parseForwardedAddress,
  resolveSourceAddress,
} from "../../src/http-authz/source-address.ts";
import { toHttpResponse } from "../../src/http-authz/to-http-response.ts";
import { parseTrustedProxies, trustedProxyMatcher } from "../../src/http-authz/trusted-proxies.ts";

// [request target, endpoint or undefined (404)]
const targets: [string, AuthzTarget | undefined][] = [
  ["/nginx/ns/prod", { dialect: "nginx", namespace: "prod" }],
  ["/nginx/ns/prod?x=1", { dialect: "nginx", namespace: "prod" }],
  ["/traefik/ns/team-a", { dialect: "traefik", namespace: "team-a" }],
  ["/envoy/ns/prod/", { dialect: "envoy", namespace: "prod", originalPath: "/" }],
  [
    "/envoy/ns/prod/v1/reports?format=csv",
    { dialect: "envoy", namespace: "prod", originalPath: "/v1/reports?format=csv" },
  ],
  [
    "/envoy/ns/prod/v1/../admin",
    { dialect: "envoy", namespace: "prod", originalPath: "/v1/../admin" },
  ],
  ["/envoy/ns/prod", undefined],
  ["/envoy/ns/prod?x", undefined],
  ["/nginx/ns/prod/", undefined],
  ["/nginx/ns/prod/extra", undefined],
  ["/nginx/ns/", undefined],
  ["/nginx/ns/Prod", undefined],
  ["/nginx/ns/%70rod", undefined],
  ["/nginx/ns/-prod", undefined],
  ["/nginx/ns/" + "a".repeat(64), undefined],
  ["/nginx/ns/prod%2Fstaging", undefined],
  ["/nginx/ns/..", undefined],
  ["/NGINX/ns/prod", undefined],
  ["/haproxy/ns/prod", undefined],
  ["/authz/ns/prod", undefined],
  ["/envoy/../nginx/ns/prod", undefined],
  ["//nginx/ns/prod", undefined],
  ["http://evil/nginx/ns/prod", undefined],
  ["*", undefined],
  ["", undefined],
];

describe("authorization endpoints: the path names dialect and namespace", () => {
  for (const [url, expected] of targets) {
    it(`${JSON.stringify(url)} → ${expected ? `${expected.dialect} ${expected.namespace}` : "404"}`, () => {
      assert.deepEqual(parseAuthzTarget(url), expected);
    });
  }
});

const trusted = trustedProxyMatcher(
  parseTrustedProxies("10.0.0.0/8, 127.0.0.1, fd00::/8") as never,
);

// [peer, X-Forwarded-For values, X-Real-IP values, source]
const sources: [string | undefined, string[], string[], string | undefined][] = [
  ["203.0.113.9", [], [], "203.0.113.9"],
  ["203.0.113.9", ["198.51.100.1"], ["198.51.100.2"], "203.0.113.9"],
  ["10.1.1.1", ["198.51.100.1"], [], "198.51.100.1"],
  ["10.1.1.1", ["6.6.6.6, 198.51.100.1"], [], "198.51.100.1"],
  ["10.1.1.1", ["6.6.6.6, 198.51.100.1, 10.2.2.2"], [], "198.51.100.1"],
  ["10.1.1.1", ["6.6.6.6", "198.51.100.1, 10.2.2.2"], [], "198.51.100.1"],
  ["10.1.1.1", ["198.51.100.1:4711"], [], "198.51.100.1"],
  ["10.1.1.1", ["[2001:db8::1]:4711"], [], "2001:db8::1"],
  ["10.1.1.1", ["2001:DB8:0::1"], [], "2001:db8::1"],
  ["10.1.1.1", ["198.51.100.1, garbage"], [], undefined],
  ["10.1.1.1", ["garbage, 198.51.100.1"], [], "198.51.100.1"],
  ["10.1.1.1", ["unknown"], [], undefined],
  ["10.1.1.1", ["010.0.0.1"], [], undefined],
  ["10.1.1.1", [], ["198.51.100.7"], "198.51.100.7"],
  ["10.1.1.1", ["10.3.3.3"], ["198.51.100.7"], "198.51.100.7"],
  ["10.1.1.1", [], ["198.51.100.7", "198.51.100.8"], undefined],
  ["10.1.1.1", [], ["not an ip"], undefined],
  ["10.1.1.1", ["10.4.4.4, 10.3.3.3"], [], "10.4.4.4"],
  ["10.1.1.1", [], [], "10.1.1.1"],
  ["::ffff:127.0.0.1", ["198.51.100.1"], [], "198.51.100.1"],
  ["fd00::5", ["198.51.100.1"], [], "198.51.100.1"],
  [undefined, ["198.51.100.1"], [], undefined],
];

describe("the source address behind trusted proxies", () => {
  for (const [peer, xff, realIp, expected] of sources) {
    it(`peer ${peer}, XFF ${JSON.stringify(xff)}, X-Real-IP ${JSON.stringify(realIp)} → ${expected}`, () => {
      const got = resolveSourceAddress(peer, { forwardedFor: xff, realIp }, trusted);
      assert.equal(got, expected);
    });
  }

  it("forwarded addresses parse strictly", () => {
    assert.equal(parseForwardedAddress(" 192.0.2.1 "), "192.0.2.1");
    assert.equal(parseForwardedAddress("[::1]"), "::1");
    assert.equal(parseForwardedAddress("[::1]x"), undefined);
    assert.equal(parseForwardedAddress("192.0.2.1:99999"), undefined);
    assert.equal(parseForwardedAddress("_hidden"), undefined);
    assert.equal(parseForwardedAddress("192.0.2.1/24"), undefined);
  });

  it("--trusted-proxies takes CIDRs and bare addresses, and says what is wrong", () => {
    assert.deepEqual(
      (parseTrustedProxies("127.0.0.1, ::1,10.0.0.0/8") as readonly { text: string }[]).map(
        (b) => b.text,
      ),
      ["127.0.0.1/32", "::1/128", "10.0.0.0/8"],
    );
    assert.match((parseTrustedProxies("10.0.0.1/8") as { error: string }).error, /host bits/);
    assert.match((parseTrustedProxies("localhost") as { error: string }).error, /not a CIDR/);
    assert.equal(trustedProxyMatcher([])("127.0.0.1"), false);
  });
});

describe("what each dialect's request means", () => {
  const noProxies = () => false;
  const headers = {
    authorization: ["Bearer t"],
    host: ["reports.example.com"],
    "x-original-method": ["DELETE"],
    "x-original-uri": ["/v1/reports/1?x"],
    "x-original-host": ["nginx.example.com"],
    "x-forwarded-method": ["PUT"],
    "x-forwarded-uri": ["/v1/reports/2"],
    "x-forwarded-host": ["traefik.example.com"],
    "x-request-id": ["rid-1"],
  };
  const req = { method: "GET", headers, peerAddress: "192.0.2.5" };

  it("Envoy: this request's method and Host, the path after the prefix", () => {
    const view = fromHttpRequest(
      { dialect: "envoy", namespace: "prod", originalPath: "/v1/x?y" },
      req,
      noProxies,
    );
    assert.deepEqual(view, {
      authorization: ["Bearer t"],
      route: { method: "GET", path: "/v1/x?y", host: "reports.example.com" },
      source: { address: "192.0.2.5", principal: undefined },
      namespaceSources: { contextExtensionNamespace: "prod" },
      requestId: "rid-1",
    });
  });

  it("nginx: X-Original-Method, -URI and -Host", () => {
    const view = fromHttpRequest({ dialect: "nginx", namespace: "prod" }, req, noProxies);
    assert.deepEqual(view.route, {
      method: "DELETE",
      path: "/v1/reports/1?x",
      host: "nginx.example.com",
    });
  });

  it("Traefik: X-Forwarded-Method, -Uri and -Host", () => {
    const view = fromHttpRequest({ dialect: "traefik", namespace: "staging" }, req, noProxies);
    assert.deepEqual(view.route, {
      method: "PUT",
      path: "/v1/reports/2",
      host: "traefik.example.com",
    });
    assert.equal(view.namespaceSources.contextExtensionNamespace, "staging");
  });

  it("a doubled or missing original-request header reads as a path no rule matches", () => {
    const doubled = { ...headers, "x-original-uri": ["/v1/reports/1", "/admin"] };
    const view = fromHttpRequest(
      { dialect: "nginx", namespace: "prod" },
      { ...req, headers: doubled },
      noProxies,
    );
    assert.equal(view.route.path, "");
    const { "x-forwarded-uri": _, ...missing } = headers;
    const traefik = fromHttpRequest(
      { dialect: "traefik", namespace: "prod" },
      { ...req, headers: missing },
      noProxies,
    );
    assert.equal(traefik.route.path, "");
  });

  it("every authorization header is kept, so two of them can be refused", () => {
    const view = fromHttpRequest(
      { dialect: "nginx", namespace: "prod" },
      { ...req, headers: { ...headers, authorization: ["Bearer a", "Bearer b"] } },
      noProxies,
    );
    assert.deepEqual(view.authorization, ["Bearer a", "Bearer b"]);
  });
});

describe("the HTTP answer to a decision", () => {
  const token = { id: "abc", scope: "prod/r", owner: "team" };

  it("an allow carries the identity; Envoy is told to drop authorization and dry-run", () => {
    const answer = toHttpResponse(
      { allowed: true, reason: "ok", token, scopeNamespace: "prod" },
      "envoy",
    );
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.headers, {
      "cache-control": "no-store",
      "x-tokenscope-token-id": "abc",
      "x-tokenscope-scope": "prod/r",
      "x-tokenscope-owner": "team",
      "x-envoy-auth-headers-to-remove": "authorization, x-tokenscope-dry-run-deny",
    });
  });

  it("a DryRun allow names the would-be reason", () => {
    const decision = {
      allowed: true as const,
      reason: "ok" as const,
      token,
      scopeNamespace: "prod",
      dryRunDeny: "rate_limited" as const,
    };
    assert.equal(
      toHttpResponse(decision, "traefik").headers["x-tokenscope-dry-run-deny"],
      "rate_limited",
    );
    assert.equal(
      toHttpResponse(decision, "envoy").headers["x-envoy-auth-headers-to-remove"],
      "authorization",
    );
  });

  // [reason, status, extra headers expected]
  const denies: [string, number, Record<string, string>][] = [
    ["missing_token", 401, { "www-authenticate": 'Bearer realm="tokenscope"' }],
    ["route_not_allowed", 403, {}],
    ["store_unavailable", 503, { "retry-after": "1" }],
  ];
  for (const [reason, status, extra] of denies) {
    it(`${reason} is ${status} with its headers and JSON body`, () => {
      const answer = toHttpResponse({ allowed: false, reason: reason as never }, "traefik");
      assert.equal(answer.status, status);
      assert.equal(answer.headers["x-tokenscope-reason"], reason);
      for (const [k, v] of Object.entries(extra)) assert.equal(answer.headers[k], v);
      assert.equal((JSON.parse(answer.body) as { reason: string }).reason, reason);
      assert.equal(answer.headers["x-tokenscope-token-id"], undefined);
    });
  }

  it("rate_limited is 429 with retry-after in whole seconds", () => {
    const answer = toHttpResponse(
      { allowed: false, reason: "rate_limited", token, retryAfterMs: 1200 },
      "nginx",
    );
    assert.equal(answer.status, 429);
    assert.equal(answer.headers["retry-after"], "2");
    assert.equal(answer.headers["x-tokenscope-error"], "the token's rate limit is exceeded");
  });
});
