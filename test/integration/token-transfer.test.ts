// Back up and restore: `token export` from the embedded store, `token import` into a real
// redis-server, run through the CLI as an operator would, then checked by a server on Redis.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runCli } from "../harness/cli.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TOKEN_SCAN_REGEX } from "../../src/domain/token.ts";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { checkClient } from "../harness/check-client.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { FIXTURE_SCOPES, startTestServer, tempDir, writeHmacKey } from "../harness/server.ts";

let redis: RedisServer;
let dir: string;
let keyFile: string;
let fileFlags: string[];
let redisFlags: string[];
const issued: Record<string, { token: string; id: string }> = {};

function cli(args: string[], input?: string) {
  return runCli(args, { input, timeoutMs: 30_000 });
}

before(async () => {
  redis = await startRedis();
  dir = tempDir("transfer");
  keyFile = writeHmacKey(dir);
  const common = [`--scopes=${FIXTURE_SCOPES}`, "--environment=prod", `--hmac-key-file=${keyFile}`];
  fileFlags = [...common, `--data-dir=${join(dir, "data")}`];
  redisFlags = [...common, `--redis-url=${redis.url}`, "--redis-prefix={restore}:"];
  for (const owner of ["alice", "bob"]) {
    const r = cli([
      "token",
      "issue",
      "--scope",
      "prod/reports-read",
      "--owner",
      owner,
      "-o",
      "json",
      ...fileFlags,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { token: string; record: { id: string } };
    issued[owner] = { token: out.token, id: out.record.id };
  }
  assert.equal(cli(["token", "revoke", issued.bob?.id ?? "", ...fileFlags]).code, 0);
});

after(async () => {
  await redis.stop();
});

describe("token export and import", () => {
  let exported = "";

  it("export writes a header and every record, and no secret", () => {
    const r = cli(["token", "export", ...fileFlags]);
    assert.equal(r.code, 0, r.stderr);
    exported = r.stdout;
    const lines = exported.trim().split("\n");
    assert.equal(lines.length, 3);
    const header = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    assert.equal(header.format, "tokenscope-export");
    assert.equal(header.records, 2);
    for (const { token } of Object.values(issued)) {
      assert.ok(!exported.includes(token), "the token is not in the export");
      assert.ok(!exported.includes(token.slice(-38, -6)), "its secret is not in the export");
    }
    assert.doesNotMatch(exported, TOKEN_SCAN_REGEX);
  });

  it("import into Redis restores the tokens: allowed and revoked as before", async () => {
    const r = cli(["token", "import", "-", "-o", "json", ...redisFlags], exported);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { imported: 2, existing: 0, pastRetention: 0 });
    const server = await startTestServer({
      redisUrl: redis.url,
      hmacKeyFile: keyFile,
      extraArgs: ["--redis-prefix={restore}:"],
    });
    const client = checkClient(server.grpcPort);
    try {
      const check = (token: string) =>
        client.check(
          buildCheckRequest({
            token,
            method: "GET",
            path: "/v1/reports",
            host: "reports.prod.svc.cluster.local",
            namespace: "prod",
          }),
        );
      assert.equal((await check(issued.alice?.token ?? "")).status?.code, 0);
      const bob = await check(issued.bob?.token ?? "");
      assert.equal(bob.status?.message, "revoked");
    } finally {
      client.close();
      await server.stop();
    }
  });

  it("importing again changes nothing and keeps what is stored", () => {
    const r = cli(["token", "import", "-", "-o", "json", ...redisFlags], exported);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { imported: 0, existing: 2, pastRetention: 0 });
  });

  const refusals: [string, (text: string) => string, string[], RegExp][] = [
    ["another HMAC key", (t) => t, [], /another HMAC key/],
    ["another environment", (t) => t, ["--environment=staging"], /environment "prod"/],
    [
      "a corrupt record line",
      (t) => t.replace(/"expiresAt":\d+/, '"expiresAt":"soon"'),
      [],
      /line 2: token record: expiresAt is not a number; nothing was imported/,
    ],
    ["a line that is not JSON", (t) => t.replace(/\n/, "\n{oops\n"), [], /line 2 is not JSON/],
    [
      "a truncated file",
      (t) => t.split("\n").slice(0, 2).join("\n"),
      [],
      /announces 2 records, the file has 1/,
    ],
    ["not an export", () => "hello\n", [], /line 1 is not JSON/],
  ];
  for (const [what, edit, flags, message] of refusals) {
    it(`refuses ${what} with one clear line, writing nothing`, () => {
      const target = [
        ...redisFlags.filter((f) => !f.startsWith("--redis-prefix")),
        "--redis-prefix={refused}:",
      ];
      if (what === "another HMAC key") {
        const otherKey = writeHmacKey(tempDir("other-key"));
        target.splice(
          target.findIndex((f) => f.startsWith("--hmac-key-file")),
          1,
          `--hmac-key-file=${otherKey}`,
        );
      }
      const file = join(dir, "edited.jsonl");
      writeFileSync(file, edit(exported));
      const r = cli(["token", "import", file, ...target, ...flags]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      const list = cli(["token", "list", "-o", "json", ...target]);
      assert.deepEqual(JSON.parse(list.stdout), [], "nothing was written");
    });
  }
});
