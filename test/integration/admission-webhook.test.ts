// The TokenScope admission webhook over real HTTPS (a certificate made by openssl), answering the
// AdmissionReview fixtures in test/fixtures/admission/ the way the API server would send them.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serveConfig, UsageError } from "../../src/config.ts";
import { startWebhookServer, type WebhookServer } from "../../src/kube/webhook-server.ts";
import type { AdmissionResponse } from "../../src/kube/admission.ts";
import { httpsRequest } from "../harness/https-client.ts";
import { memoryLogger, startTestServer, tempDir, type TestServer } from "../harness/server.ts";
import { makeCertificate, type TestCertificate } from "../harness/tls.ts";

const HOUR = 3_600_000;
const FIXTURES = new URL("../fixtures/admission/", import.meta.url);

function fixtureText(name: string): string {
  return readFileSync(new URL(name, FIXTURES), "utf8");
}

function fixtureUid(name: string): string {
  return (JSON.parse(fixtureText(name)) as { request: { uid: string } }).request.uid;
}

interface Expectation {
  readonly allowed: boolean;
  /** The exact fields of the denial's causes, in order (one line of the message each). */
  readonly fields?: readonly string[];
  readonly message?: RegExp;
  /** Each must match one warning; [] means no warnings at all. */
  readonly warnings?: readonly RegExp[];
}

// [fixture, what it is, what the webhook must answer]
const reviewRows: [string, string, Expectation][] = [
  ["create-valid.json", "a valid scope is admitted", { allowed: true, warnings: [] }],
  [
    "create-invalid-cidrs.json",
    "bad CIDRs are refused, each on its own line",
    {
      allowed: false,
      fields: ["spec.sources.cidrs[0]", "spec.sources.cidrs[1]", "spec.sources.cidrs[2]"],
      message: /host bits set; did you mean 10\.20\.0\.0\/16\?\n.*prefix length must be 0-32/,
    },
  ],
  [
    "create-invalid-spiffe-ids.json",
    "bad SPIFFE IDs are refused",
    {
      allowed: false,
      fields: [
        "spec.sources.principals[0]",
        "spec.sources.principals[1]",
        "spec.sources.principals[2]",
      ],
      message: /lowercase trust domain[\s\S]*is not a SPIFFE ID[\s\S]*"\." or "\.\." segments/,
    },
  ],
  [
    "create-invalid-paths.json",
    "bad path patterns are refused",
    {
      allowed: false,
      fields: [
        "spec.rules[0].paths[0]",
        "spec.rules[0].paths[1]",
        "spec.rules[0].paths[2]",
        "spec.rules[0].paths[3]",
      ],
      message: /trailing "\/\*"[\s\S]*must start with "\/"[\s\S]*"\.\."[\s\S]*query string/,
    },
  ],
  [
    "create-ttl-above-cap.json",
    "a maxTTL above the installation's cap is refused",
    {
      allowed: false,
      fields: ["spec.tokenPolicy.maxTTL"],
      message: /4320h is above this installation's cap of 2160h/,
      warnings: [],
    },
  ],
  [
    "create-missing-owner.json",
    "a scope without an owner is refused",
    { allowed: false, fields: ["spec.owner"], message: /spec\.owner: is required/ },
  ],
  [
    "create-many-problems.json",
    "every problem is listed, one line each",
    {
      allowed: false,
      fields: [
        "spec.owner",
        "spec.rules[0].hosts[0]",
        "spec.rules[0].methods[0]",
        "spec.tokenPolicy.defaultTTL",
        "spec.rateLimit.requestsPerSecond",
      ],
      message: /invalid \(5 problems\)/,
    },
  ],
  [
    "create-broad.json",
    "a god-level scope without the annotation is refused",
    {
      allowed: false,
      fields: ["spec.rules[0]"],
      message: /god-level scope.*tokenscope\.dev\/allow-broad: "true"/,
      warnings: [/"\*" allows any method/],
    },
  ],
  [
    "create-broad-annotated.json",
    "a god-level scope annotated allow-broad is admitted, with warnings",
    {
      allowed: true,
      warnings: [
        /"\*" allows any method/,
        /any path with any method \(tokenscope\.dev\/allow-broad/,
      ],
    },
  ],
  [
    "create-broad-annotated-false.json",
    'only allow-broad: "true" counts',
    { allowed: false, fields: ["spec.rules[0]"], message: /god-level/ },
  ],
  [
    "create-dry-run-request-valid.json",
    "a dryRun request is judged the same (the webhook has no side effects)",
    { allowed: true, warnings: [] },
  ],
  [
    "create-dry-run-request-invalid.json",
    "a dryRun request of an invalid scope is refused like a real one",
    { allowed: false, fields: ["spec.owner"] },
  ],
  [
    "create-mode-dryrun-long-ttl.json",
    "DryRun mode and a long default maxTTL are allowed with warnings",
    { allowed: true, warnings: [/spec\.mode: DryRun/, /may live 2160h/] },
  ],
  [
    "create-long-ttl.json",
    "a maxTTL under the cap but over 720h is allowed with a warning",
    { allowed: true, warnings: [/tokens may live 1440h/] },
  ],
  [
    "create-object-missing.json",
    "a CREATE without an object fails closed",
    { allowed: false, fields: ["<root>"], message: /request\.object is missing/ },
  ],
  ["update-valid.json", "a valid UPDATE is admitted", { allowed: true, warnings: [] }],
  [
    "update-enforce-to-dryrun.json",
    "switching an enforced scope to DryRun is allowed with a warning",
    { allowed: true, warnings: [/changed from Enforce to DryRun/] },
  ],
  [
    "update-introduces-problem.json",
    "an UPDATE that introduces a problem is refused",
    { allowed: false, fields: ["spec.sources.cidrs[0]"], message: /0-32/ },
  ],
  [
    "update-labels-of-invalid-scope.json",
    "a label edit of an already-invalid scope is let through, with the problem as a warning",
    { allowed: true, warnings: [/spec unchanged but still invalid \(1 problem;.*cap of 2160h/] },
  ],
  [
    "update-remove-allow-broad.json",
    "removing allow-broad from a god-level scope is refused",
    { allowed: false, fields: ["spec.rules[0]"], message: /god-level/ },
  ],
  [
    "update-finalizer-removal-while-deleting.json",
    "a scope being deleted may lose its finalizers even if invalid",
    { allowed: true, warnings: [] },
  ],
  ["delete.json", "DELETE is allowed", { allowed: true, warnings: [] }],
  [
    "other-kind-configmap.json",
    "another kind is allowed untouched",
    { allowed: true, warnings: [] },
  ],
];

// [fixture, what the 400 must say]
const malformedRows: [string, RegExp][] = [
  ["malformed-not-json.txt", /malformed AdmissionReview: not JSON/],
  ["malformed-no-uid.json", /request\.uid must be a non-empty string/],
  ["malformed-v1beta1.json", /apiVersion must be "admission\.k8s\.io\/v1"/],
  ["malformed-no-request.json", /request is missing/],
];

interface ReviewReply {
  apiVersion: string;
  kind: string;
  response: AdmissionResponse;
}

describe("admission webhook over HTTPS", () => {
  let dir: string;
  let cert: TestCertificate;
  let server: WebhookServer;
  const logLines: string[] = [];

  before(async () => {
    dir = tempDir("webhook");
    cert = makeCertificate(dir, "webhook");
    server = await startWebhookServer({
      host: "127.0.0.1",
      port: 0,
      certFile: cert.certFile,
      keyFile: cert.keyFile,
      maxTTLCapMs: 2160 * HOUR,
      logger: memoryLogger(logLines),
      maxBodyBytes: 256 * 1024,
    });
  });
  after(() => server.close());

  async function review(fixture: string): Promise<ReviewReply> {
    const reply = await httpsRequest({
      port: server.port,
      ca: cert.cert,
      body: fixtureText(fixture),
    });
    assert.equal(reply.status, 200, reply.body);
    assert.match(String(reply.headers["content-type"]), /^application\/json/);
    return JSON.parse(reply.body) as ReviewReply;
  }

  for (const [fixture, behaviour, expected] of reviewRows) {
    it(`${behaviour} (${fixture})`, async () => {
      const answer = await review(fixture);
      assert.equal(answer.apiVersion, "admission.k8s.io/v1");
      assert.equal(answer.kind, "AdmissionReview");
      const res = answer.response;
      assert.equal(res.uid, fixtureUid(fixture), "the uid is echoed");
      assert.equal(res.allowed, expected.allowed, JSON.stringify(res));
      if (expected.allowed) assert.equal(res.status, undefined);
      else {
        assert.ok(res.status, "a denial carries a status");
        assert.equal(res.status.code, 422);
        assert.equal(res.status.reason, "Invalid");
        const lines = res.status.message.split("\n").slice(1);
        assert.deepEqual(
          res.status.details.causes.map((c) => c.field),
          expected.fields,
        );
        assert.deepEqual(
          lines.map((l) => l.slice(0, l.indexOf(": "))),
          expected.fields,
          "one line per problem, each starting with its field",
        );
        if (expected.message) assert.match(res.status.message, expected.message);
      }
      if (expected.warnings) {
        const warnings = res.warnings ?? [];
        if (expected.warnings.length === 0) assert.deepEqual(warnings, []);
        for (const pattern of expected.warnings) {
          assert.ok(
            warnings.some((w) => pattern.test(w)),
            `${String(pattern)} in ${JSON.stringify(warnings)}`,
          );
        }
        for (const w of warnings) assert.ok(!w.includes("\n") && w.length <= 200, w);
      }
    });
  }

  it("answers a dryRun review exactly as the same review without dryRun", async () => {
    const normal = await review("create-valid.json");
    const dry = await review("create-dry-run-request-valid.json");
    assert.deepEqual({ ...dry.response, uid: "" }, { ...normal.response, uid: "" });
    const logged = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(logged.some((l) => l.uid === dry.response.uid && l.dry_run === true));
  });

  for (const [fixture, message] of malformedRows) {
    it(`a malformed review gets HTTP 400 saying why (${fixture})`, async () => {
      const reply = await httpsRequest({
        port: server.port,
        ca: cert.cert,
        body: fixtureText(fixture),
      });
      assert.equal(reply.status, 400);
      assert.match(reply.body, message);
    });
  }

  // [what, request, status, body]
  const httpRows: [
    string,
    Parameters<typeof httpsRequest>[0] extends infer O ? Partial<O> : never,
    number,
    RegExp,
  ][] = [
    ["GET is refused", { method: "GET" }, 405, /only POST/],
    ["another path is not found", { path: "/mutate-nothing" }, 404, /\/validate/],
    [
      "a non-JSON content type is refused",
      { contentType: "text/plain", body: "{}" },
      415,
      /application\/json/,
    ],
    [
      "a body over the limit is refused",
      { body: `"${"x".repeat(300 * 1024)}"` },
      413,
      /over 262144 bytes/,
    ],
  ];
  for (const [what, req, status, body] of httpRows) {
    it(what, async () => {
      const reply = await httpsRequest({ port: server.port, ca: cert.cert, ...req });
      assert.equal(reply.status, status);
      assert.match(reply.body, body);
      if (status === 405) assert.equal(reply.headers.allow, "POST");
    });
  }

  it("never logs the object under review", () => {
    const text = logLines.join("");
    assert.ok(logLines.length > 0);
    assert.ok(!text.includes("team-analytics"), "the spec's content stays out of the log");
  });
});

/** A Secret volume as the kubelet writes it: files are symlinks through "..data". */
function secretVolume(root: string, cert: TestCertificate, version: number): void {
  const versionDir = join(root, `..v${version}`);
  mkdirSync(versionDir);
  writeFileSync(join(versionDir, "tls.crt"), cert.cert);
  writeFileSync(join(versionDir, "tls.key"), readFileSync(cert.keyFile));
  symlinkSync(`..v${version}`, join(root, "..data_tmp"));
  renameSync(join(root, "..data_tmp"), join(root, "..data")); // atomic swap, like the kubelet
}

describe("webhook certificate reload", () => {
  it("serves a renewed certificate on the next handshake, without restarting", async () => {
    const dir = tempDir("webhook-reload");
    const first = makeCertificate(dir, "first");
    const second = makeCertificate(dir, "second");
    const mount = join(dir, "tls");
    mkdirSync(mount);
    secretVolume(mount, first, 1);
    symlinkSync("..data/tls.crt", join(mount, "tls.crt"));
    symlinkSync("..data/tls.key", join(mount, "tls.key"));
    const logLines: string[] = [];
    const server = await startWebhookServer({
      host: "127.0.0.1",
      port: 0,
      certFile: join(mount, "tls.crt"),
      keyFile: join(mount, "tls.key"),
      maxTTLCapMs: 2160 * HOUR,
      logger: memoryLogger(logLines),
      reloadPollMs: 3_600_000, // only the file watch can see the change in time
    });
    try {
      const body = fixtureText("create-valid.json");
      const before = await httpsRequest({ port: server.port, ca: first.cert, body });
      assert.equal(before.peerFingerprint256, first.fingerprint256);

      const started = Date.now();
      secretVolume(mount, second, 2);
      let seen = "";
      while (Date.now() - started < 15_000) {
        const reply = await httpsRequest({
          port: server.port,
          ca: Buffer.concat([first.cert, second.cert]),
          body,
        });
        assert.equal(reply.status, 200);
        seen = reply.peerFingerprint256;
        if (seen === second.fingerprint256) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(seen, second.fingerprint256, "the renewed certificate is served");
      console.log(`# webhook certificate swapped in after ${Date.now() - started} ms`);
      assert.ok(logLines.some((l) => l.includes("webhook certificate reloaded")));
    } finally {
      await server.close();
    }
  });

  it("keeps the current certificate when the renewed files do not form a pair", async () => {
    const dir = tempDir("webhook-bad-reload");
    const good = makeCertificate(dir, "good");
    const other = makeCertificate(dir, "other");
    const logLines: string[] = [];
    const server = await startWebhookServer({
      host: "127.0.0.1",
      port: 0,
      certFile: good.certFile,
      keyFile: good.keyFile,
      maxTTLCapMs: 2160 * HOUR,
      logger: memoryLogger(logLines),
      reloadPollMs: 3_600_000,
    });
    try {
      writeFileSync(good.keyFile, readFileSync(other.keyFile)); // a key from another pair
      assert.equal(server.reloadCertificate(), false);
      const reply = await httpsRequest({
        port: server.port,
        ca: good.cert,
        body: fixtureText("create-valid.json"),
      });
      assert.equal(reply.peerFingerprint256, good.fingerprint256);
      assert.ok(logLines.some((l) => l.includes("keeping the current one")));
    } finally {
      await server.close();
    }
  });
});

describe("serve with the webhook flags", () => {
  let server: TestServer;
  let cert: TestCertificate;

  before(async () => {
    const dir = tempDir("serve-webhook");
    cert = makeCertificate(dir, "serve");
    server = await startTestServer({
      extraArgs: [
        "--webhook-addr=127.0.0.1:0",
        `--webhook-cert-file=${cert.certFile}`,
        `--webhook-key-file=${cert.keyFile}`,
        "--max-ttl-cap=720h",
      ],
    });
  });
  after(() => server.stop());

  it("answers reviews with the installation's --max-ttl-cap, and /readyz is unaffected", async () => {
    assert.ok(server.webhookPort, "the webhook port is reported");
    const reply = await httpsRequest({
      port: server.webhookPort,
      ca: cert.cert,
      body: fixtureText("create-long-ttl.json"),
    });
    const res = (JSON.parse(reply.body) as ReviewReply).response;
    assert.equal(res.allowed, false);
    assert.match(res.status?.message ?? "", /1440h is above this installation's cap of 720h/);
    const readyz = await fetch(`http://127.0.0.1:${server.httpPort}/readyz`);
    assert.equal(readyz.status, 200);
  });

  // [flags, the usage error]
  const flagRows: [string[], RegExp][] = [
    [["--webhook-addr=:9443"], /also pass --webhook-cert-file and --webhook-key-file/],
    [["--webhook-cert-file=/x.crt"], /go together/],
    [["--webhook-key-file=/x.key"], /go together/],
    [
      ["--webhook-cert-file=/x.crt", "--webhook-key-file=/x.key", "--webhook-addr=nope"],
      /HOST:PORT/,
    ],
  ];
  for (const [flags, message] of flagRows) {
    it(`refuses ${flags.join(" ")}`, () => {
      assert.throws(
        () => serveConfig(flags, {}),
        (err) => err instanceof UsageError && message.test(err.message),
      );
    });
  }

  it("defaults the webhook address to :9443 when given a certificate", () => {
    const config = serveConfig(["--webhook-cert-file=/x.crt", "--webhook-key-file=/x.key"], {});
    const { injection, ...addr } = config.webhook ?? { injection: undefined };
    assert.deepEqual(addr, { host: "0.0.0.0", port: 9443, certFile: "/x.crt", keyFile: "/x.key" });
    assert.equal(
      injection?.redisUrlSecret.name,
      "tokenscope-redis",
      "the sidecar's default Secret",
    );
  });

  it("refuses to start on an unreadable certificate, with a clear message", async () => {
    await assert.rejects(
      startTestServer({
        extraArgs: [
          "--webhook-cert-file=/nonexistent/tls.crt",
          "--webhook-key-file=/nonexistent/tls.key",
        ],
      }),
      /cannot read the webhook certificate/,
    );
  });
});
