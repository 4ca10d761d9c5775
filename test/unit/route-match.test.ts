import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compileCidrMatcher, formatIp, parseCidr, parseIp } from "../../src/domain/cidr.ts";
import type { CidrBlock } from "../../src/domain/cidr.ts";
import {
  compileRouteMatcher,
  normalizeHost,
  normalizeRequestPath,
  type RouteRule,
} from "../../src/domain/route-match.ts";
import { compileTokenScope } from "../../src/domain/scope.ts";
import type { RequestSource } from "../../src/domain/scope-types.ts";

function allows(rule: RouteRule, host: string, path: string, method = "GET"): boolean {
  return compileRouteMatcher([rule])({ host, path, method });
}

// [host pattern, request host, matches]
const hostRows: [string, string, boolean][] = [
  ["*.example.com", "a.example.com", true],
  ["*.example.com", "a.b.example.com", true],
  ["*.example.com", "example.com", false],
  ["*.example.com", ".example.com", false],
  ["*.example.com", "a..example.com", false],
  ["*.example.com", "badexample.com", false],
  ["*.example.com", "a.example.com.evil.io", false],
  ["*.example.com", "A.Example.COM", true],
  ["*.example.com", "a.example.com:8443", true],
  ["*.example.com", "a.example.com.", true],
  ["*.example.com", "[::1]:8080", false],
  ["api.example.com", "api.example.com", true],
  ["api.example.com", "API.Example.com:443", true],
  ["api.example.com", "api.example.com.", true],
  ["api.example.com", "api.example.com..", false],
  ["api.example.com", "x.api.example.com", false],
  ["api.example.com", "api.example.co", false],
  ["api.example.com", "api.example.com:8080:1", false],
  ["api.example.com", "", false],
  ["10.0.0.1", "10.0.0.1:8080", true],
];

// [path pattern, request path, matches]
const pathRows: [string, string, boolean][] = [
  ["/v1/reports", "/v1/reports", true],
  ["/v1/reports", "/v1/reports/", false],
  ["/v1/reports", "/v1/reports?format=csv", true],
  ["/v1/reports", "/v1/reports#top", true],
  ["/v1/reports", "/v1/reports?next=/admin#x", true],
  ["/v1/reports", "/v1/Reports", false],
  ["/v1/reports", "/v1/%72eports", true],
  ["/v1/reports", "/v1/%72%65ports", true],
  ["/v1/reports", "/v1//reports", false],
  ["/v1/reports", "//v1/reports", false],
  ["/v1/reports", "/v1/reports%2F", false],
  ["/v1/reports", "/v1/reports/..", false],
  ["/v1/*", "/v1", false],
  ["/v1/*", "/v1/", true],
  ["/v1/*", "/v10", false],
  ["/v1/*", "/v10/x", false],
  ["/v1/*", "/v1/a/b/c", true],
  ["/v1/*", "/v1/a/", true],
  ["/v1/*", "/v1/...", true],
  ["/v1/*", "/v1/a?x=../..", true],
  ["/v1/*", "/v1/a/../../admin", false],
  ["/v1/*", "/v1/%2e%2e/admin", false],
  ["/v1/*", "/v1/%2E%2E/admin", false],
  ["/v1/*", "/v1/.%2e/admin", false],
  ["/v1/*", "/v1/./a", false],
  ["/v1/*", "/v1/%2e/a", false],
  ["/v1/*", "/v1/..;/admin", false],
  ["/v1/*", "/v1/a//b", false],
  ["/v1/*", "/v1/a%2Fb", false],
  ["/v1/*", "/v1/a%2fb", false],
  ["/v1/*", "/v1/a%5Cb", false],
  ["/v1/*", "/v1/a\\b", false],
  ["/v1/*", "/v1/a%00", false],
  ["/v1/*", "/v1/a%0d%0aX: y", false],
  ["/v1/*", "/v1/a%zz", false],
  ["/v1/*", "/v1/a%2", false],
  ["/v1/*", "/v1/a%", false],
  ["/v1/*", "/v1/a%252e%252e", false],
  ["/v1/*", "/v1/caf%C3%A9", true],
  ["/v1/*", "/v1/%C3", false],
  ["/v1/*", "/v1/a b", false],
  ["/v1/*", "/v1/a\tb", false],
  ["/v1/*", "/v1/café", false],
  ["/v1/*", "v1/a", false],
  ["/v1/*", "", false],
  ["/v1/*", "*", false],
  ["/*", "/", true],
  ["/*", "/anything/at/all", true],
  ["/*", "/a/../admin", false],
  ["/", "/", true],
  ["/", "/x", false],
];

describe("route matching: hosts", () => {
  for (const [pattern, host, expected] of hostRows) {
    it(`${pattern} ${expected ? "matches" : "does not match"} host ${JSON.stringify(host)}`, () => {
      assert.equal(allows({ hosts: [pattern], methods: ["GET"] }, host, "/"), expected);
    });
  }

  it("a rule without hosts matches any host, IPv6 literals included", () => {
    for (const host of ["anything.example", "[::1]:8080", "10.0.0.1", ""]) {
      assert.equal(allows({ methods: ["GET"] }, host, "/"), true, host);
    }
  });

  it("ports, case and one trailing dot are stripped from the host", () => {
    assert.equal(normalizeHost("[::1]:8080"), "[::1]");
    assert.equal(normalizeHost("[2001:DB8::1]"), "[2001:db8::1]");
    assert.equal(normalizeHost("Api.Example.COM.:443"), "api.example.com");
    assert.equal(normalizeHost("2001:db8::1"), "2001:db8::1");
  });
});

describe("route matching: paths", () => {
  for (const [pattern, path, expected] of pathRows) {
    it(`${pattern} ${expected ? "matches" : "does not match"} ${JSON.stringify(path)}`, () => {
      assert.equal(allows({ paths: [pattern], methods: ["GET"] }, "h", path), expected);
    });
  }

  it("a rule without paths matches any path, but never an ambiguous one", () => {
    assert.equal(allows({ methods: ["GET"] }, "h", "/x/y?z"), true);
    assert.equal(allows({ methods: ["GET"] }, "h", "/x/%2e%2e/y"), false);
  });

  it("the path is matched decoded, without query or fragment", () => {
    assert.equal(normalizeRequestPath("/v1/%41b?c#d"), "/v1/Ab");
    assert.equal(normalizeRequestPath("/v1/%2e%2e"), undefined);
  });
});

describe("route matching: methods and rules", () => {
  const rows: [string[], string, boolean][] = [
    [["GET"], "GET", true],
    [["GET"], "get", true],
    [["GET"], "POST", false],
    [["GET", "HEAD"], "head", true],
    [["*"], "PURGE", true],
    [["*"], "delete", true],
  ];
  for (const [methods, method, expected] of rows) {
    it(`methods ${methods.join(",")} ${expected ? "allow" : "deny"} ${method}`, () => {
      assert.equal(allows({ methods }, "h", "/", method), expected);
    });
  }

  it("host, path and method must all match within one rule", () => {
    const match = compileRouteMatcher([
      { hosts: ["a.example.com"], paths: ["/a"], methods: ["GET"] },
      { hosts: ["b.example.com"], paths: ["/b"], methods: ["POST"] },
    ]);
    assert.equal(match({ host: "a.example.com", path: "/b", method: "POST" }), false);
    assert.equal(match({ host: "b.example.com", path: "/b", method: "GET" }), false);
    assert.equal(match({ host: "b.example.com", path: "/b", method: "post" }), true);
    assert.equal(match({ host: "a.example.com", path: "/a", method: "GET" }), true);
  });
});

function block(text: string): CidrBlock {
  const parsed = parseCidr(text);
  if ("error" in parsed) assert.fail(`${text}: ${parsed.error}`);
  return parsed;
}

// [CIDRs, source address, inside]
const cidrRows: [string[], string | undefined, boolean][] = [
  [["10.0.0.0/8"], "10.1.2.3", true],
  [["10.0.0.0/8"], "11.0.0.1", false],
  [["10.0.0.0/8"], "::ffff:10.1.2.3", true],
  [["10.0.0.0/8"], "::ffff:a01:203", true],
  [["10.0.0.0/8"], "::FFFF:10.1.2.3", true],
  [["10.0.0.0/8"], "::ffff:11.0.0.1", false],
  [["10.0.0.0/8"], "::10.1.2.3", false],
  [["10.0.0.0/8"], "10.1.2.3:80", false],
  [["10.0.0.0/8"], "10.1.2", false],
  [["10.0.0.0/8"], "010.1.2.3", false],
  [["10.0.0.0/8"], "10.1.2.3 ", false],
  [["10.0.0.0/8"], "10.1.2.3.4", false],
  [["10.0.0.0/8"], "garbage", false],
  [["10.0.0.0/8"], "", false],
  [["10.0.0.0/8"], undefined, false],
  [["10.1.2.3/32"], "10.1.2.3", true],
  [["10.1.2.3/32"], "10.1.2.4", false],
  [["0.0.0.0/0"], "203.0.113.9", true],
  [["0.0.0.0/0"], "::ffff:203.0.113.9", true],
  [["0.0.0.0/0"], "2001:db8::1", false],
  [["::/0"], "2001:db8::1", true],
  [["::/0"], "203.0.113.9", false],
  [["2001:db8::/32"], "2001:db8::1", true],
  [["2001:db8::/32"], "2001:DB8:0:0:0:0:0:1", true],
  [["2001:db8::/32"], "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true],
  [["2001:db8::/32"], "2001:db9::1", false],
  [["2001:db8::/32"], "fe80::1%eth0", false],
  [["2001:db8::/32"], "2001:db8::1::2", false],
  [["2001:db8::/32"], "2001:db8:::1", false],
  [["2001:db8::/32"], "[2001:db8::1]", false],
  [["2001:db8::/32"], "12345::", false],
  [["::1/128"], "::1", true],
  [["::1/128"], "0:0:0:0:0:0:0:1", true],
  [["::1/128"], "::2", false],
  [["::1/128"], "127.0.0.1", false],
  [["10.0.0.0/8", "2001:db8::/32"], "2001:db8::5", true],
  [["10.0.0.0/8", "2001:db8::/32"], "10.9.9.9", true],
];

describe("source addresses in CIDRs", () => {
  for (const [cidrs, address, expected] of cidrRows) {
    it(`${String(address)} is ${expected ? "inside" : "outside"} ${cidrs.join(", ")}`, () => {
      assert.equal(compileCidrMatcher(cidrs.map(block))(address), expected);
    });
  }

  it("blocks and addresses print in canonical (RFC 5952) form", () => {
    assert.equal(block("2001:DB8::/32").text, "2001:db8::/32");
    assert.equal(block("0:0:0:0:0:0:0:1/128").text, "::1/128");
    const format = (text: string) => formatIp(parseIp(text) ?? { version: 4, value: 0n });
    assert.equal(format("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    assert.equal(format("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
    assert.equal(format("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
    assert.equal(format("::"), "::");
  });
});

describe("scope sources", () => {
  function allowsSource(sources: unknown, source: RequestSource): boolean {
    const entry = compileTokenScope(
      {
        apiVersion: "tokenscope.dev/v1alpha1",
        kind: "TokenScope",
        metadata: { name: "s", namespace: "ns" },
        spec: { owner: "o", rules: [{ methods: ["GET"], paths: ["/x"] }], sources },
      },
      { maxTTLCapMs: 2160 * 3_600_000 },
    );
    assert.ok(entry.ready, JSON.stringify(entry));
    return entry.scope.allowsSource(source);
  }
  const ci = "spiffe://cluster.local/ns/ci/sa/reporter";
  const rows: [string, unknown, RequestSource, boolean][] = [
    ["no sources allow any caller", undefined, {}, true],
    [
      "an address inside cidrs is allowed",
      { cidrs: ["10.20.0.0/16"] },
      { address: "10.20.1.1" },
      true,
    ],
    [
      "an address outside cidrs is denied",
      { cidrs: ["10.20.0.0/16"] },
      { address: "10.21.1.1" },
      false,
    ],
    ["no address is denied when cidrs are set", { cidrs: ["10.20.0.0/16"] }, {}, false],
    ["the exact principal is allowed", { principals: [ci] }, { principal: ci }, true],
    ["another principal is denied", { principals: [ci] }, { principal: `${ci}2` }, false],
    [
      "a principal prefix is denied",
      { principals: [ci] },
      { principal: "spiffe://cluster.local/ns/ci" },
      false,
    ],
    [
      "no principal is denied when principals are set",
      { principals: [ci] },
      { address: "10.20.1.1" },
      false,
    ],
    [
      "both set: both hold",
      { cidrs: ["10.20.0.0/16"], principals: [ci] },
      { address: "10.20.1.1", principal: ci },
      true,
    ],
    [
      "both set: the address alone is not enough",
      { cidrs: ["10.20.0.0/16"], principals: [ci] },
      { address: "10.20.1.1" },
      false,
    ],
    [
      "both set: the principal alone is not enough",
      { cidrs: ["10.20.0.0/16"], principals: [ci] },
      { address: "10.99.1.1", principal: ci },
      false,
    ],
  ];
  for (const [what, sources, source, expected] of rows) {
    it(what, () => {
      assert.equal(allowsSource(sources, source), expected);
    });
  }
});
