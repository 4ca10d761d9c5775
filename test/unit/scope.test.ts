/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return --
   the rows edit manifests as untyped JSON, the way users write them */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { compileTokenScope, validateTokenScope } from "../../src/domain/scope.ts";
import type { ScopeEntry } from "../../src/domain/scope-types.ts";

const HOUR = 3_600_000;
const opts = { maxTTLCapMs: 2160 * HOUR };
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The SPEC §2 example: valid, and the base every problem row edits. */
function manifest(): Json {
  return {
    apiVersion: "tokenscope.dev/v1alpha1",
    kind: "TokenScope",
    metadata: { name: "reports-read", namespace: "prod", generation: 3 },
    spec: {
      owner: "team-analytics",
      description: "Read-only access to the reports API",
      mode: "Enforce",
      rules: [
        {
          hosts: ["reports.prod.svc.cluster.local", "*.reports.example.com"],
          paths: ["/v1/reports", "/v1/reports/*"],
          methods: ["GET", "HEAD"],
        },
        { paths: ["/v1/health"], methods: ["GET"] },
      ],
      sources: {
        cidrs: ["10.20.0.0/16"],
        principals: ["spiffe://cluster.local/ns/ci/sa/reporter"],
      },
      tokenPolicy: { maxTTL: "720h", defaultTTL: "168h", rotationGracePeriod: "24h" },
      rateLimit: { requestsPerSecond: 50, burst: 100 },
    },
  };
}

function ready(entry: ScopeEntry) {
  assert.ok(entry.ready, `expected ready, got ${JSON.stringify(entry)}`);
  return entry.scope;
}

// [what is wrong, edit, exact field, message]
const problemRows: [string, (m: Json) => void, string, RegExp][] = [
  ["a foreign apiVersion", (m) => (m.apiVersion = "v1"), "apiVersion", /tokenscope\.dev\/v1alpha1/],
  ["another kind", (m) => (m.kind = "ConfigMap"), "kind", /TokenScope/],
  ["no metadata", (m) => delete m.metadata, "metadata", /required/],
  ["no name", (m) => delete m.metadata.name, "metadata.name", /required/],
  ["an uppercase name", (m) => (m.metadata.name = "Reports"), "metadata.name", /DNS-1123/],
  ["a name with _", (m) => (m.metadata.name = "reports_read"), "metadata.name", /DNS-1123/],
  ["no namespace", (m) => delete m.metadata.namespace, "metadata.namespace", /required/],
  ["a dotted namespace", (m) => (m.metadata.namespace = "a.b"), "metadata.namespace", /label/],
  ["no spec", (m) => delete m.spec, "spec", /required/],
  ["no owner", (m) => delete m.spec.owner, "spec.owner", /required/],
  ["a blank owner", (m) => (m.spec.owner = "  "), "spec.owner", /required/],
  ["an owner with a newline", (m) => (m.spec.owner = "a\nb"), "spec.owner", /control/],
  ["a 254-char owner", (m) => (m.spec.owner = "o".repeat(254)), "spec.owner", /253/],
  ["a numeric description", (m) => (m.spec.description = 5), "spec.description", /string/],
  ["a lowercase mode", (m) => (m.spec.mode = "enforce"), "spec.mode", /"Enforce" or "DryRun"/],
  ["an unknown spec field", (m) => (m.spec.ownr = "x"), "spec.ownr", /unknown field/],
  [
    "a mis-cased field",
    (m) => (m.spec.ratelimit = {}),
    "spec.ratelimit",
    /did you mean "rateLimit"/,
  ],
  ["no rules", (m) => delete m.spec.rules, "spec.rules", /required/],
  ["empty rules", (m) => (m.spec.rules = []), "spec.rules", /at least one/],
  ["rules as a map", (m) => (m.spec.rules = {}), "spec.rules", /list/],
  ["65 rules", (m) => (m.spec.rules = Array(65).fill(m.spec.rules[1])), "spec.rules", /at most 64/],
  ["a rule that is a string", (m) => (m.spec.rules[1] = "GET /"), "spec.rules[1]", /object/],
  [
    "an unknown rule field",
    (m) => (m.spec.rules[1].method = ["GET"]),
    "spec.rules[1].method",
    /did you mean "methods"/,
  ],
  [
    "a rule without methods",
    (m) => delete m.spec.rules[1].methods,
    "spec.rules[1].methods",
    /required/,
  ],
  ["empty methods", (m) => (m.spec.rules[1].methods = []), "spec.rules[1].methods", /not be empty/],
  [
    "a lowercase method",
    (m) => (m.spec.rules[0].methods[1] = "head"),
    "spec.rules[0].methods[1]",
    /uppercase \("HEAD"\)/,
  ],
  [
    "a method with a space",
    (m) => (m.spec.rules[0].methods[0] = "GET /"),
    "spec.rules[0].methods[0]",
    /method token/,
  ],
  [
    "a non-string method",
    (m) => (m.spec.rules[0].methods[0] = 1),
    "spec.rules[0].methods[0]",
    /string/,
  ],
  [
    "* with other methods",
    (m) => (m.spec.rules[1].methods = ["*", "GET"]),
    "spec.rules[1].methods",
    /only method/,
  ],
  [
    "a bare * host",
    (m) => (m.spec.rules[0].hosts[1] = "*"),
    "spec.rules[0].hosts[1]",
    /omit hosts/,
  ],
  [
    "an uppercase host",
    (m) => (m.spec.rules[0].hosts[0] = "Reports.example.com"),
    "spec.rules[0].hosts[0]",
    /lowercase/,
  ],
  [
    "a host with a port",
    (m) => (m.spec.rules[0].hosts[0] = "reports.example.com:8080"),
    "spec.rules[0].hosts[0]",
    /port/,
  ],
  [
    "a host with a trailing dot",
    (m) => (m.spec.rules[0].hosts[0] = "reports.example.com."),
    "spec.rules[0].hosts[0]",
    /dot/,
  ],
  [
    "a host with an empty label",
    (m) => (m.spec.rules[0].hosts[0] = "a..example.com"),
    "spec.rules[0].hosts[0]",
    /DNS name/,
  ],
  [
    "a nested wildcard host",
    (m) => (m.spec.rules[0].hosts[1] = "*.*.example.com"),
    "spec.rules[0].hosts[1]",
    /DNS/,
  ],
  [
    "a mid-name wildcard",
    (m) => (m.spec.rules[0].hosts[1] = "api.*.example.com"),
    "spec.rules[0].hosts[1]",
    /DNS/,
  ],
  ["an IPv6 host", (m) => (m.spec.rules[0].hosts[0] = "[::1]"), "spec.rules[0].hosts[0]", /port/],
  ["empty hosts", (m) => (m.spec.rules[0].hosts = []), "spec.rules[0].hosts", /omit hosts/],
  [
    "a relative path",
    (m) => (m.spec.rules[0].paths[0] = "v1/reports"),
    "spec.rules[0].paths[0]",
    /start with "\/"/,
  ],
  [
    "a path with a query",
    (m) => (m.spec.rules[0].paths[0] = "/v1/reports?x=1"),
    "spec.rules[0].paths[0]",
    /query/,
  ],
  [
    "a path with a fragment",
    (m) => (m.spec.rules[0].paths[0] = "/v1/reports#a"),
    "spec.rules[0].paths[0]",
    /fragment/,
  ],
  [
    "a path with a space",
    (m) => (m.spec.rules[0].paths[0] = "/v1/re ports"),
    "spec.rules[0].paths[0]",
    /whitespace/,
  ],
  [
    "a percent-encoded path",
    (m) => (m.spec.rules[0].paths[0] = "/v1/%72eports"),
    "spec.rules[0].paths[0]",
    /percent/,
  ],
  [
    "a .. segment",
    (m) => (m.spec.rules[0].paths[0] = "/v1/../admin"),
    "spec.rules[0].paths[0]",
    /"\.\."/,
  ],
  [
    "a . segment",
    (m) => (m.spec.rules[0].paths[1] = "/v1/./reports/*"),
    "spec.rules[0].paths[1]",
    /"\."/,
  ],
  [
    "a // in a path",
    (m) => (m.spec.rules[0].paths[0] = "/v1//reports"),
    "spec.rules[0].paths[0]",
    /\/\//,
  ],
  [
    "a backslash",
    (m) => (m.spec.rules[0].paths[0] = "/v1\\reports"),
    "spec.rules[0].paths[0]",
    /backslash/,
  ],
  [
    "a mid-path *",
    (m) => (m.spec.rules[0].paths[1] = "/v1/*/reports"),
    "spec.rules[0].paths[1]",
    /trailing "\/\*"/,
  ],
  [
    "a * glued to a name",
    (m) => (m.spec.rules[0].paths[1] = "/v1/reports*"),
    "spec.rules[0].paths[1]",
    /trailing "\/\*"/,
  ],
  [
    "a bare * path",
    (m) => (m.spec.rules[0].paths[1] = "*"),
    "spec.rules[0].paths[1]",
    /start with "\/"/,
  ],
  [
    "a label template inside a segment",
    (m) => (m.spec.rules[0].paths[1] = "/v1/tenants/t-{token.labels.tenant}/*"),
    "spec.rules[0].paths[1]",
    /must be a whole path segment/,
  ],
  [
    "a template of something other than a label",
    (m) => (m.spec.rules[0].paths[1] = "/v1/tenants/{token.owner}/*"),
    "spec.rules[0].paths[1]",
    /must be a whole path segment/,
  ],
  [
    "a label template with an uppercase key",
    (m) => (m.spec.rules[0].paths[1] = "/v1/tenants/{token.labels.Tenant}/*"),
    "spec.rules[0].paths[1]",
    /label key must be lowercase/,
  ],
  [
    "an unclosed label template",
    (m) => (m.spec.rules[0].paths[1] = "/v1/tenants/{token.labels.tenant/*"),
    "spec.rules[0].paths[1]",
    /must be a whole path segment/,
  ],
  [
    "a label template beside a dot segment",
    (m) => (m.spec.rules[0].paths[1] = "/v1/{token.labels.tenant}/../admin"),
    "spec.rules[0].paths[1]",
    /"\.", "\.\."/,
  ],
  ["empty paths", (m) => (m.spec.rules[0].paths = []), "spec.rules[0].paths", /omit paths/],
  ["sources as a list", (m) => (m.spec.sources = ["10.0.0.0/8"]), "spec.sources", /object/],
  [
    "host bits in a CIDR",
    (m) => (m.spec.sources.cidrs = ["10.0.0.0/8", "10.0.0.1/16"]),
    "spec.sources.cidrs[1]",
    /^10\.0\.0\.1\/16 has host bits set; did you mean 10\.0\.0\.0\/16\?$/,
  ],
  [
    "host bits in an IPv6 CIDR",
    (m) => (m.spec.sources.cidrs = ["2001:db8::1/32"]),
    "spec.sources.cidrs[0]",
    /did you mean 2001:db8::\/32\?/,
  ],
  [
    "an IPv4 prefix over 32",
    (m) => (m.spec.sources.cidrs = ["10.0.0.0/33"]),
    "spec.sources.cidrs[0]",
    /0-32/,
  ],
  [
    "an IPv6 prefix over 128",
    (m) => (m.spec.sources.cidrs = ["::/129"]),
    "spec.sources.cidrs[0]",
    /0-128/,
  ],
  [
    "an address without a prefix",
    (m) => (m.spec.sources.cidrs = ["10.0.0.1"]),
    "spec.sources.cidrs[0]",
    /not a CIDR/,
  ],
  [
    "an octet over 255",
    (m) => (m.spec.sources.cidrs = ["300.0.0.0/8"]),
    "spec.sources.cidrs[0]",
    /not an IPv4 or IPv6/,
  ],
  [
    "a leading-zero octet",
    (m) => (m.spec.sources.cidrs = ["010.0.0.0/8"]),
    "spec.sources.cidrs[0]",
    /not an IPv4 or IPv6/,
  ],
  ["empty cidrs", (m) => (m.spec.sources.cidrs = []), "spec.sources.cidrs", /omit cidrs/],
  [
    "a principal without a path",
    (m) => (m.spec.sources.principals = ["spiffe://cluster.local"]),
    "spec.sources.principals[0]",
    /well-formed/,
  ],
  [
    "a non-SPIFFE principal",
    (m) => (m.spec.sources.principals = ["https://x/y"]),
    "spec.sources.principals[0]",
    /SPIFFE/,
  ],
  [
    "an uppercase trust domain",
    (m) => (m.spec.sources.principals = ["spiffe://Cluster.local/ns/a"]),
    "spec.sources.principals[0]",
    /lowercase trust domain/,
  ],
  [
    "a principal with a query",
    (m) => (m.spec.sources.principals = ["spiffe://cluster.local/ns/a?x=1"]),
    "spec.sources.principals[0]",
    /query/,
  ],
  [
    "a principal with ..",
    (m) => (m.spec.sources.principals = ["spiffe://cluster.local/ns/../sa"]),
    "spec.sources.principals[0]",
    /"\.\."/,
  ],
  [
    "a 2049-char principal",
    (m) => (m.spec.sources.principals = [`spiffe://td/${"a".repeat(2037)}`]),
    "spec.sources.principals[0]",
    /2048/,
  ],
  [
    "maxTTL above the cap",
    (m) => (m.spec.tokenPolicy.maxTTL = "3000h"),
    "spec.tokenPolicy.maxTTL",
    /above this installation's cap of 2160h/,
  ],
  [
    "maxTTL as a number",
    (m) => (m.spec.tokenPolicy.maxTTL = 720),
    "spec.tokenPolicy.maxTTL",
    /duration/,
  ],
  [
    "maxTTL in words",
    (m) => (m.spec.tokenPolicy.maxTTL = "forever"),
    "spec.tokenPolicy.maxTTL",
    /duration/,
  ],
  [
    "a zero maxTTL",
    (m) => (m.spec.tokenPolicy.maxTTL = "0s"),
    "spec.tokenPolicy.maxTTL",
    /greater than 0/,
  ],
  [
    "defaultTTL above maxTTL",
    (m) => (m.spec.tokenPolicy.defaultTTL = "721h"),
    "spec.tokenPolicy.defaultTTL",
    /longer than maxTTL \(720h\)/,
  ],
  [
    "a zero defaultTTL",
    (m) => (m.spec.tokenPolicy.defaultTTL = "0"),
    "spec.tokenPolicy.defaultTTL",
    /greater than 0/,
  ],
  [
    "a grace above maxTTL",
    (m) => (m.spec.tokenPolicy.rotationGracePeriod = "1000h"),
    "spec.tokenPolicy.rotationGracePeriod",
    /longer than maxTTL/,
  ],
  [
    "an unknown policy field",
    (m) => (m.spec.tokenPolicy.maxTtl = "1h"),
    "spec.tokenPolicy.maxTtl",
    /did you mean "maxTTL"/,
  ],
  [
    "a zero rate",
    (m) => (m.spec.rateLimit.requestsPerSecond = 0),
    "spec.rateLimit.requestsPerSecond",
    /greater than 0/,
  ],
  [
    "a rate as a string",
    (m) => (m.spec.rateLimit.requestsPerSecond = "50"),
    "spec.rateLimit.requestsPerSecond",
    /number/,
  ],
  [
    "a rate without requestsPerSecond",
    (m) => (m.spec.rateLimit = { burst: 5 }),
    "spec.rateLimit.requestsPerSecond",
    /required/,
  ],
  [
    "a fractional burst",
    (m) => (m.spec.rateLimit.burst = 1.5),
    "spec.rateLimit.burst",
    /whole number/,
  ],
  ["a zero burst", (m) => (m.spec.rateLimit.burst = 0), "spec.rateLimit.burst", /at least 1/],
  [
    "any path with any method",
    (m) => (m.spec.rules[1] = { methods: ["*"] }),
    "spec.rules[1]",
    /god-level.*allow-broad/,
  ],
  [
    "/* with any method",
    (m) => (m.spec.rules[0] = { paths: ["/a", "/*"], methods: ["*"] }),
    "spec.rules[0]",
    /god-level/,
  ],
  [
    "any path with every method spelled out",
    (m) => (m.spec.rules[1] = { methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] }),
    "spec.rules",
    /every method spelled out is a god-level scope/,
  ],
  [
    "any path with every method split across rules",
    (m) => {
      m.spec.rules = [
        m.spec.rules[0],
        { methods: ["GET", "POST"] },
        { paths: ["/*"], methods: ["PUT", "PATCH", "DELETE"] },
      ];
    },
    "spec.rules",
    /god-level/,
  ],
];

describe("TokenScope validation", () => {
  it("the SPEC §2 example is valid, without warnings", () => {
    assert.deepEqual(validateTokenScope(manifest(), opts), { problems: [], warnings: [] });
  });

  for (const [what, edit, field, message] of problemRows) {
    it(`${what} is exactly one problem at ${field}`, () => {
      const m = manifest();
      edit(m);
      const { problems } = validateTokenScope(m, opts);
      assert.equal(problems.length, 1, JSON.stringify(problems));
      const [problem] = problems;
      assert.ok(problem);
      assert.equal(problem.field, field);
      assert.match(problem.message, message);
      const entry = compileTokenScope(m, opts);
      assert.ok(!entry.ready);
      assert.deepEqual(entry.problems, problems);
    });
  }

  it("a god-level scope annotated allow-broad is accepted with a warning", () => {
    const m = manifest();
    m.spec.rules[1] = { methods: ["*"] };
    m.metadata.annotations = { "tokenscope.dev/allow-broad": "true" };
    const { problems, warnings } = validateTokenScope(m, opts);
    assert.deepEqual(problems, []);
    assert.ok(warnings.some((w) => w.startsWith("spec.rules[1] allows any path with any method")));
    assert.ok(compileTokenScope(m, opts).ready);
  });

  it('allow-broad must be the string "true"', () => {
    const m = manifest();
    m.spec.rules[1] = { methods: ["*"] };
    m.metadata.annotations = { "tokenscope.dev/allow-broad": true };
    assert.equal(validateTokenScope(m, opts).problems[0]?.field, "spec.rules[1]");
  });

  it('"*" on a narrow path is accepted with an any-method warning', () => {
    const m = manifest();
    m.spec.rules[1].methods = ["*"];
    const { problems, warnings } = validateTokenScope(m, opts);
    assert.deepEqual(problems, []);
    assert.deepEqual(warnings, ['spec.rules[1].methods: "*" allows any method, writes included']);
  });

  it("several problems are each reported at their own field", () => {
    const m = manifest();
    m.spec.owner = "";
    m.spec.rules[0].methods = ["get"];
    m.spec.sources.cidrs = ["10.0.0.1/8"];
    const fields = validateTokenScope(m, opts).problems.map((p) => p.field);
    assert.deepEqual(fields, ["spec.owner", "spec.rules[0].methods[0]", "spec.sources.cidrs[0]"]);
  });

  it("null optional fields read as absent, as Kubernetes prunes them", () => {
    const m = manifest();
    m.spec.description = null;
    m.spec.sources = null;
    m.spec.rateLimit = null;
    assert.deepEqual(validateTokenScope(m, opts).problems, []);
  });
});

describe("TokenScope compilation", () => {
  it("a valid scope compiles with its identity, policy, rate and summary", () => {
    const scope = ready(compileTokenScope(manifest(), opts));
    assert.equal(scope.key, "prod/reports-read");
    assert.equal(scope.owner, "team-analytics");
    assert.equal(scope.mode, "Enforce");
    assert.equal(scope.generation, 3);
    assert.deepEqual(scope.tokenPolicy, {
      maxTTLms: 720 * HOUR,
      defaultTTLms: 168 * HOUR,
      rotationGraceMs: 24 * HOUR,
    });
    assert.deepEqual(scope.rateLimit, { requestsPerSecond: 50, burst: 100 });
    assert.deepEqual(scope.summary, [
      "GET, HEAD on reports.prod.svc.cluster.local, *.reports.example.com paths /v1/reports, /v1/reports/*",
      "GET on any host paths /v1/health",
      "from 10.20.0.0/16",
      "called by spiffe://cluster.local/ns/ci/sa/reporter",
      "tokens live at most 720h (default 168h, rotation grace 24h)",
      "at most 50 requests/s per token (burst 100)",
    ]);
  });

  it("an omitted tokenPolicy gets 2160h / 168h / 24h", () => {
    const m = manifest();
    delete m.spec.tokenPolicy;
    const { tokenPolicy } = ready(compileTokenScope(m, opts));
    assert.deepEqual(tokenPolicy, {
      maxTTLms: 2160 * HOUR,
      defaultTTLms: 168 * HOUR,
      rotationGraceMs: 24 * HOUR,
    });
  });

  it("a short maxTTL pulls the default TTL and grace down with it", () => {
    const m = manifest();
    m.spec.tokenPolicy = { maxTTL: "1h" };
    const { tokenPolicy } = ready(compileTokenScope(m, opts));
    assert.deepEqual(tokenPolicy, { maxTTLms: HOUR, defaultTTLms: HOUR, rotationGraceMs: HOUR });
  });

  it("a smaller installation cap is the default maxTTL", () => {
    const m = manifest();
    delete m.spec.tokenPolicy;
    const scope = ready(compileTokenScope(m, { maxTTLCapMs: 48 * HOUR }));
    assert.equal(scope.tokenPolicy.maxTTLms, 48 * HOUR);
    assert.equal(scope.tokenPolicy.defaultTTLms, 48 * HOUR);
  });

  it("a zero rotation grace is allowed", () => {
    const m = manifest();
    m.spec.tokenPolicy.rotationGracePeriod = "0s";
    assert.equal(ready(compileTokenScope(m, opts)).tokenPolicy.rotationGraceMs, 0);
  });

  it("a rate without burst allows one second's worth at once", () => {
    const m = manifest();
    m.spec.rateLimit = { requestsPerSecond: 2.5 };
    assert.deepEqual(ready(compileTokenScope(m, opts)).rateLimit, {
      requestsPerSecond: 2.5,
      burst: 3,
    });
  });

  it("mode defaults to Enforce; a missing or odd generation is 0", () => {
    const m = manifest();
    delete m.spec.mode;
    m.metadata.generation = -1;
    const scope = ready(compileTokenScope(m, opts));
    assert.equal(scope.mode, "Enforce");
    assert.equal(scope.generation, 0);
  });

  it("an invalid scope is keyed by its namespace/name and not ready", () => {
    const m = manifest();
    m.spec.rules[0].methods = ["get"];
    const entry = compileTokenScope(m, opts);
    assert.equal(entry.ready, false);
    assert.equal(entry.key, "prod/reports-read");
  });

  const exampleDir = new URL("../../deploy/examples/scopes/", import.meta.url);
  for (const file of readdirSync(exampleDir).filter((f) => f.endsWith(".yaml"))) {
    it(`the example ${file} compiles ready without problems`, () => {
      const doc: unknown = parse(readFileSync(new URL(file, exampleDir), "utf8"));
      assert.deepEqual(validateTokenScope(doc, opts).problems, []);
      ready(compileTokenScope(doc, opts));
    });
  }
});

describe("TokenScope validation never throws", () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const hostile = {
    apiVersion: "tokenscope.dev/v1alpha1",
    get kind(): string {
      throw new Error("boom");
    },
  };
  const garbage: [string, unknown][] = [
    ["null", null],
    ["undefined", undefined],
    ["a number", 42],
    ["NaN", Number.NaN],
    ["a string", "kind: TokenScope"],
    ["an array", [manifest()]],
    ["an empty object", {}],
    ["a spec that is a list", { ...manifest(), spec: [] }],
    ["metadata that is a string", { ...manifest(), metadata: "prod/x" }],
    ["rules of nulls", { ...manifest(), spec: { owner: "o", rules: [null, [], 7] } }],
    ["a __proto__ key", JSON.parse('{"spec": {"__proto__": {"owner": "x"}, "rules": 1}}')],
    ["a throwing getter", hostile],
    ["a revoked proxy", revoked.proxy],
    [
      "100 000 rules",
      { ...manifest(), spec: { ...manifest().spec, rules: Array(100_000).fill({}) } },
    ],
    [
      "100 000 unknown fields",
      {
        ...manifest(),
        spec: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`f${i}`, i])),
      },
    ],
  ];
  for (const [what, input] of garbage) {
    it(`${what} gives problems, not an exception`, () => {
      const { problems } = validateTokenScope(input, opts);
      assert.ok(problems.length > 0);
      assert.ok(problems.length <= 20, `too many problems: ${problems.length}`);
      assert.equal(compileTokenScope(input, opts).ready, false);
    });
  }

  it("random edits of a valid scope never throw", () => {
    const values: unknown[] = [
      null,
      0,
      -1,
      1.5,
      "",
      "*",
      "/",
      [],
      {},
      [null],
      { a: 1 },
      true,
      "x".repeat(5000),
    ];
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      const m = manifest();
      let node: Json = m;
      for (let depth = rand(4); depth > 0; depth--) {
        const keys = Object.keys(node);
        const next: unknown = node[keys[rand(keys.length)] ?? ""];
        if (typeof next !== "object" || next === null) break;
        node = next;
      }
      const keys = Object.keys(node);
      node[keys[rand(keys.length)] ?? "x"] = values[rand(values.length)];
      const { problems, warnings } = validateTokenScope(m, opts);
      assert.ok(Array.isArray(problems) && Array.isArray(warnings));
      assert.equal(compileTokenScope(m, opts).ready, problems.length === 0);
    }
  });
});
