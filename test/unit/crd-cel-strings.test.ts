// No CEL evaluator runs here, but the CRD's rules on single strings use a tiny part of CEL
// (matches, startsWith, contains, ==, !=, !, &&, ||). This test translates exactly that part to
// JavaScript with a small parser (RE2 and JavaScript agree on the regular expressions used) and checks the rules
// against the domain's own validation, value by value:
//  - never stricter: whatever the domain (and so the webhook and --scopes) accepts, they accept;
//  - not toothless: the listed bad values are refused by the rules already.
// Object-level rules (duration() comparisons, "*" alone in methods) are left to the webhook rows.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCidr } from "../../src/domain/cidr.ts";
import {
  hostPatternProblem,
  methodProblem,
  pathPatternProblem,
} from "../../src/domain/route-match.ts";
import { validateTokenScope } from "../../src/domain/scope.ts";
import { spiffeIdProblem } from "../../src/domain/scope-spec.ts";
import { loadCrd, schemaNodes } from "../harness/crd-schema.ts";

type StringRule = (self: string) => boolean;

/** CEL (the subset above) → a JavaScript predicate; throws on anything else. */
function compileStringRule(rule: string): StringRule {
  // Tokens: r'…' r"…" '…' strings, operators, parentheses, and the identifiers we know.
  const tokens = [...rule.matchAll(/r?'[^']*'|r?"[^"]*"|&&|\|\||==|!=|!|\(|\)|\.|[A-Za-z_]+|\s+/g)]
    .map((m) => m[0])
    .filter((t) => t.trim() !== "");
  if (tokens.join("").replaceAll(/\s/g, "") !== rule.replaceAll(/\s/g, "")) {
    throw new Error(`not in the translated subset: ${rule}`);
  }
  let at = 0;
  const next = () => tokens[at++] ?? "";
  const expect = (t: string) => {
    if (next() !== t) throw new Error(`not in the translated subset: ${rule} (at token ${at})`);
  };
  const literal = (): string => {
    const t = next();
    const m = /^r?(['"])(.*)\1$/.exec(t);
    if (!m) throw new Error(`not in the translated subset: ${rule} (expected a string, got ${t})`);
    return m[2] ?? "";
  };
  const primary = (): StringRule => {
    const t = next();
    if (t === "(") {
      const inner = or();
      expect(")");
      return inner;
    }
    if (t === "!") {
      const inner = primary();
      return (self) => !inner(self);
    }
    if (t !== "self") throw new Error(`not in the translated subset: ${rule} (${t})`);
    const op = next();
    if (op === "==" || op === "!=") {
      const value = literal();
      return op === "==" ? (self) => self === value : (self) => self !== value;
    }
    if (op !== ".") throw new Error(`not in the translated subset: ${rule} (${op})`);
    const method = next();
    expect("(");
    const arg = literal();
    expect(")");
    if (method === "matches") {
      const re = new RegExp(arg, "u");
      return (self) => re.test(self);
    }
    if (method === "startsWith") return (self) => self.startsWith(arg);
    if (method === "contains") return (self) => self.includes(arg);
    throw new Error(`not in the translated subset: ${rule} (${method})`);
  };
  const and = (): StringRule => {
    const parts = [primary()];
    while (tokens[at] === "&&") {
      at++;
      parts.push(primary());
    }
    return (self) => parts.every((p) => p(self));
  };
  const or = (): StringRule => {
    const parts = [and()];
    while (tokens[at] === "||") {
      at++;
      parts.push(and());
    }
    return (self) => parts.some((p) => p(self));
  };
  const compiled = or();
  if (at !== tokens.length) throw new Error(`not in the translated subset: ${rule} (trailing)`);
  return compiled;
}

const HOUR = 3_600_000;
function ownerOk(owner: string): boolean {
  const manifest = {
    apiVersion: "tokenscope.dev/v1alpha1",
    kind: "TokenScope",
    metadata: { name: "s", namespace: "prod" },
    spec: { owner, rules: [{ paths: ["/x"], methods: ["GET"] }] },
  };
  const { problems } = validateTokenScope(manifest, { maxTTLCapMs: 2160 * HOUR });
  return !problems.some((p) => p.field === "spec.owner");
}

// [schema path, the domain's verdict, values to try, values the CEL rules must refuse]
const fields: [string, (s: string) => boolean, string[], string[]][] = [
  [
    ".spec.owner",
    ownerOk,
    ["team-analytics", "Alice Example <alice@example.com>", "ops/oncall", "é", " lead", "a\u0085b"],
    ["   ", " team", "team ", "a\nb", "a\tb", "a\u0000b"],
  ],
  [
    ".spec.rules[].hosts[]",
    (s) => hostPatternProblem(s) === undefined,
    ["reports.example.com", "*.example.com", "a", "x-1.y-2.z", "Reports.example.com", "a..b"],
    [
      "*",
      "reports.example.com:443",
      "UPPER.example.com",
      "*.*.example.com",
      "-a.example.com",
      "a_b.c",
    ],
  ],
  [
    ".spec.rules[].paths[]",
    (s) => pathPatternProblem(s) === undefined,
    ["/", "/*", "/v1/reports", "/v1/reports/*", "/v1/a;b", "/v1/../x", "/v1//x", "/v1/%2F"],
    ["v1/reports", "/v1/*/x", "/v1/x*", "/v1?x=1", "/v1#top", "*"],
  ],
  [
    ".spec.rules[].methods[]",
    (s) => methodProblem(s) === undefined,
    ["GET", "HEAD", "POST", "PROPFIND", "M-SEARCH", "*", "X_Y"],
    ["get", "Get", "G*T", "GE T", "", "**"],
  ],
  [
    ".spec.sources.cidrs[]",
    (s) => !("error" in parseCidr(s)),
    ["10.0.0.0/8", "0.0.0.0/0", "::1/128", "2001:db8::/32", "::ffff:10.0.0.0/104", "10.0.0.1/8"],
    ["10.0.0.0", "example.com/8", "10.0.0.0/-1", "10.0.0.0/8 "],
  ],
  [
    ".spec.sources.principals[]",
    (s) => spiffeIdProblem(s) === undefined,
    ["spiffe://cluster.local/ns/ci/sa/reporter", "spiffe://Cluster.Local/ns/x", "spiffe://x/.."],
    ["https://cluster.local/ns/ci", "cluster.local/ns/ci/sa/x", "SPIFFE://cluster.local/x"],
  ],
];

describe("CEL rules on strings agree with the domain", () => {
  const root = loadCrd().spec.versions[0]?.schema.openAPIV3Schema ?? {};
  const nodes = new Map(schemaNodes(root));

  it("every string rule in the CRD is either translated here or compares durations", () => {
    for (const [path, node] of nodes) {
      if (node.type !== "string") continue;
      for (const { rule } of (node["x-kubernetes-validations"] ?? []) as { rule: string }[]) {
        if (rule.includes("duration(")) continue; // the TTL rows of the webhook tests
        assert.doesNotThrow(() => compileStringRule(rule), `${path}: ${rule}`);
      }
    }
  });

  for (const [path, domainOk, tries, refused] of fields) {
    const rules = ((nodes.get(path)?.["x-kubernetes-validations"] ?? []) as { rule: string }[]).map(
      (r) => compileStringRule(r.rule),
    );
    const celOk = (s: string) => rules.every((rule) => rule(s));
    it(`${path}: never stricter than the domain`, () => {
      assert.ok(rules.length > 0, "the field has CEL rules");
      for (const value of [...tries, ...refused]) {
        if (domainOk(value))
          assert.ok(celOk(value), `${JSON.stringify(value)} is valid to the domain`);
      }
    });
    it(`${path}: refuses the obvious mistakes already`, () => {
      for (const value of refused) {
        assert.ok(!domainOk(value), `${JSON.stringify(value)} is a mistake to the domain too`);
        assert.ok(!celOk(value), `${JSON.stringify(value)} is refused by the CEL rules`);
      }
    });
  }
});
