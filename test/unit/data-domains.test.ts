// Token-bound data domains: "{token.labels.KEY}" in rule paths, resolved per token at match time.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  compileRouteMatcher,
  pathPatternProblem,
  resolveLabelTemplates,
} from "../../src/domain/route-match.ts";

const TENANT_RULE = {
  paths: ["/v1/tenants/{token.labels.tenant}/*", "/v1/tenants/{token.labels.tenant}"],
  methods: ["GET"],
};
const allows = compileRouteMatcher([TENANT_RULE]);
const ACME = { tenant: "acme" };

// [request path, token labels, allowed]
const rows: [string, Readonly<Record<string, string>>, boolean][] = [
  ["/v1/tenants/acme/reports/1", ACME, true],
  ["/v1/tenants/acme", ACME, true],
  ["/v1/tenants/acme/", ACME, true],
  ["/v1/tenants/%61cme/reports", ACME, true],
  ["/v1/tenants/acme/reports?tenant=globex", ACME, true],
  ["/v1/tenants/globex/reports/1", ACME, false],
  ["/v1/tenants/acmecorp/reports", ACME, false],
  ["/v1/tenants/acme-evil/reports", ACME, false],
  ["/v1/tenants/ACME/reports", ACME, false],
  ["/v1/tenants/acme/../globex/reports", ACME, false],
  ["/v1/tenants/acme/%2e%2e/globex/reports", ACME, false],
  ["/v1/tenants/acme/.%2E/globex", ACME, false],
  ["/v1/tenants/acme%2f..%2fglobex/reports", ACME, false],
  ["/v1/tenants/acme%2Fglobex", ACME, false],
  ["/v1/tenants/acme%5c..%5cglobex", ACME, false],
  ["/v1/tenants/acme/..;/globex", ACME, false],
  ["/v1/tenants//reports", ACME, false],
  ["/v1/tenants/acme/reports", {}, false],
  ["/v1/tenants//reports", { tenant: "" }, false],
  ["/v1/tenants/acme/reports", { team: "acme" }, false],
  ["/v1/tenants/globex/x", { tenant: "acme/../globex" }, false],
  ["/v1/tenants/acme/../globex/x", { tenant: "acme/../globex" }, false],
  ["/v1/tenants/acme/x", { tenant: "acme/x" }, false],
  ["/v1/tenants/../x", { tenant: ".." }, false],
  ["/v1/tenants/./x", { tenant: "." }, false],
  ["/v1/tenants/%2e%2e/x", { tenant: "%2e%2e" }, false],
  ["/v1/tenants/a%20b/x", { tenant: "a b" }, false],
  ["/v1/tenants/anything", { tenant: "*" }, false],
];

describe("data domains: a rule path bound to the token's labels", () => {
  for (const [path, labels, expected] of rows) {
    it(`${JSON.stringify(labels)} is ${expected ? "allowed" : "denied"} ${path}`, () => {
      assert.equal(allows({ host: "h", path, method: "GET" }, labels), expected);
    });
  }

  it("a token without labels matches no templated path", () => {
    assert.equal(allows({ host: "h", path: "/v1/tenants/acme/x", method: "GET" }), false);
  });

  it("a label named like an Object.prototype member is never read through the prototype", () => {
    const matcher = compileRouteMatcher([
      { paths: ["/v1/{token.labels.constructor}/*"], methods: ["GET"] },
    ]);
    const route = { host: "h", path: "/v1/function Object() { [native code] }/x", method: "GET" };
    assert.equal(matcher(route, {}), false);
    assert.equal(matcher({ ...route, path: "/v1/c1/x" }, { constructor: "c1" }), true);
  });

  it("templates and literal paths combine in one rule", () => {
    const matcher = compileRouteMatcher([
      {
        paths: ["/v1/public/*", "/v1/{token.labels.region}/{token.labels.tenant}/*"],
        methods: ["GET"],
      },
    ]);
    const labels = { region: "eu", tenant: "acme" };
    const at = (path: string) => matcher({ host: "h", path, method: "GET" }, labels);
    assert.equal(at("/v1/public/x"), true);
    assert.equal(at("/v1/eu/acme/x"), true);
    assert.equal(at("/v1/us/acme/x"), false);
    assert.equal(at("/v1/eu/globex/x"), false);
  });
});

// [pattern, problem or undefined]
const patternRows: [string, RegExp | undefined][] = [
  ["/v1/tenants/{token.labels.tenant}/*", undefined],
  ["/v1/tenants/{token.labels.tenant}", undefined],
  ["/{token.labels.a.b-c_d}/*", undefined],
  ["/v1/t-{token.labels.tenant}/*", /whole path segment/],
  ["/v1/{token.labels.tenant}x/*", /whole path segment/],
  ["/v1/{token.labels.}/*", /label key/],
  ["/v1/{token.labels.Tenant}/*", /label key/],
  ["/v1/{token.labels.-x}/*", /label key/],
  ["/v1/{token.id}/*", /whole path segment/],
  ["/v1/{tenant}/*", /whole path segment/],
  ["/v1/}/*", /whole path segment/],
  ["/v1/{token.labels.tenant}*", /whole path segment/],
  ["/v1/{token.labels.tenant}/%2e/x", /percent-encoded/],
  ["/v1/{token.labels.tenant}//x", /empty/],
];

describe("data domains: template validation", () => {
  for (const [pattern, problem] of patternRows) {
    it(`${pattern} is ${problem ? "refused" : "accepted"}`, () => {
      const got = pathPatternProblem(pattern);
      if (problem === undefined) assert.equal(got, undefined);
      else assert.match(got ?? "", problem);
    });
  }
});

describe("data domains: token inspect names the paths of this token", () => {
  it("templates resolve to the token's label values, or say they match nothing", () => {
    const line =
      "GET on any host paths /v1/tenants/{token.labels.tenant}/*, /v1/{token.labels.region}";
    assert.equal(
      resolveLabelTemplates(line, { tenant: "acme", region: "../x" }),
      "GET on any host paths /v1/tenants/acme/*, /v1/{token.labels.region: not set on this token, matches nothing}",
    );
  });
});
