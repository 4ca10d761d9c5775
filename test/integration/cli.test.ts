// The README walk-through, run as a person would: `tokenscope serve` on its embedded defaults
// (file store, example scopes) as a child process, and the CLI against it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BIN, runCli } from "../harness/cli.ts";
import { tempDir } from "../harness/server.ts";
import { checkClient } from "../harness/check-client.ts";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";

let dir: string;
let serveProcess: ChildProcess;
let grpcAddr: string;
let serveLog = "";

function cli(...args: string[]) {
  return runCli(args, { cwd: dir, env: { ...process.env, TOKENSCOPE_LOG_LEVEL: "warn" } });
}

const ROUTE = ["--host", "reports.prod.svc.cluster.local", "--path", "/v1/reports/2026"];

function check(token: string, ...args: string[]) {
  return cli("check", "--addr", grpcAddr, "--token", token, ...ROUTE, ...args);
}

before(async () => {
  dir = tempDir("cli");
  serveProcess = spawn(
    process.execPath,
    [BIN, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
    {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TOKENSCOPE_SHUTDOWN_DELAY: "1s" },
    },
  );
  serveProcess.stderr?.on("data", (chunk: Buffer) => (serveLog += chunk.toString()));
  const giveUp = Date.now() + 15_000;
  while (!/"msg":"tokenscope serving"/.test(serveLog)) {
    if (Date.now() > giveUp || serveProcess.exitCode !== null)
      throw new Error(`serve did not start:\n${serveLog}`);
    await sleep(50);
  }
  const port = /"grpc_port":(\d+)/.exec(serveLog)?.[1];
  grpcAddr = `127.0.0.1:${port ?? "?"}`;
});

after(async () => {
  if (serveProcess.exitCode === null) {
    serveProcess.kill("SIGKILL");
    await once(serveProcess, "exit");
  }
});

describe("the README walk-through on the embedded defaults", () => {
  let token = "";
  let id = "";

  it("serve says once that it runs on the embedded store and the example scopes", () => {
    assert.equal(serveLog.match(/embedded mode/g)?.length, 1);
    assert.match(serveLog, /example manifests/);
  });

  it("token issue prints the token once and stores only its hash", () => {
    const r = cli(
      "token",
      "issue",
      "--scope",
      "prod/reports-read",
      "--owner",
      "team-analytics",
      "--ttl",
      "24h",
      "-o",
      "json",
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      token: string;
      record: { id: string; state: string; hash?: string };
    };
    token = out.token;
    id = out.record.id;
    assert.match(token, /^tks_dev_[0-9A-Za-z]{50}$/);
    assert.equal(out.record.state, "active");
    assert.equal(out.record.hash, undefined);
    const stored = spawnSync("cat", [join(dir, ".tokenscope", "tokens.json")], {
      encoding: "utf8",
    }).stdout;
    assert.ok(
      stored.includes(id) && !stored.includes(token.slice(-38, -6)),
      "the secret is not stored",
    );
  });

  it("an allowed check exits 0 and names the token upstream", () => {
    const r = check(token, "--method", "GET", "--namespace", "prod");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ALLOW/);
    assert.match(r.stdout, new RegExp(`x-tokenscope-token-id: ${id}`));
  });

  it("the read token is denied on POST", () => {
    const r = check(token, "--method", "POST", "--namespace", "prod");
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^DENY 403 route_not_allowed/);
  });

  it("the prod token is denied for a staging destination", () => {
    const r = check(token, "--method", "GET", "--namespace", "staging", "-o", "json");
    assert.equal(r.code, 1);
    assert.equal((JSON.parse(r.stdout) as { reason: string }).reason, "namespace_mismatch");
  });

  it("list and inspect show the token, never its secret", () => {
    const list = cli("token", "list");
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${id}\\s+prod/reports-read\\s+team-analytics\\s+active`));
    const inspect = cli("token", "inspect", id);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /in namespace prod only/);
    for (const out of [list.stdout, inspect.stdout]) assert.ok(!out.includes(token));
  });

  it("a revoked token is denied by the running server", async () => {
    assert.equal(cli("token", "revoke", id).code, 0);
    let r = check(token, "--method", "GET", "--namespace", "prod");
    for (let i = 0; i < 20 && r.code === 0; i++) {
      await sleep(100);
      r = check(token, "--method", "GET", "--namespace", "prod");
    }
    assert.match(r.stdout, /^DENY 401 revoked/);
  });

  it("no secret reaches the server log", () => {
    assert.ok(!serveLog.includes(token));
  });
});

describe("bad CLI input gets one clear line and a non-zero exit, never a stack trace", () => {
  const rows: [string, string[], number, RegExp][] = [
    [
      "an unknown scope",
      ["token", "issue", "--scope", "prod/nope", "--owner", "x"],
      2,
      /scope prod\/nope does not exist/,
    ],
    [
      "a TTL above the scope's maxTTL",
      ["token", "issue", "--scope", "prod/reports-read", "--owner", "x", "--ttl", "9999h"],
      2,
      /maxTTL 720h/,
    ],
    [
      "a TTL that is not a duration",
      ["token", "issue", "--scope", "prod/reports-read", "--owner", "x", "--ttl", "soon"],
      2,
      /--ttl: "soon" is not a duration/,
    ],
    [
      "an owner that cannot travel in an HTTP header",
      ["token", "issue", "--scope", "prod/reports-read", "--owner", "数据团队"],
      2,
      /--owner: at most 253 printable ASCII characters/,
    ],
    [
      "a missing owner",
      ["token", "issue", "--scope", "prod/reports-read"],
      2,
      /usage: tokenscope token issue/,
    ],
    ["an unknown flag", ["token", "list", "--bogus"], 2, /Unknown option '--bogus'/],
    ["an unknown command", ["frobnicate"], 2, /unknown command "frobnicate"/],
    ["a bad token id", ["token", "revoke", "nope"], 2, /"nope" is not a token id/],
    [
      "an unknown token id",
      ["token", "inspect", "AAAAAAAAAAAA"],
      2,
      /no token with id AAAAAAAAAAAA/,
    ],
    ["a bad environment tag", ["token", "list", "--environment", "Prod!"], 2, /--environment/],
    [
      "Redis without a key file",
      ["token", "list", "--redis-url", "redis://127.0.0.1:1"],
      2,
      /--hmac-key-file is required/,
    ],
  ];
  for (const [name, args, code, message] of rows) {
    it(name, () => {
      const r = cli(...args);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    });
  }
});

describe("shutdown", () => {
  it("SIGTERM turns not ready at once, answers through the shutdown delay, then exits 0", async () => {
    const httpPort = /"http_port":(\d+)/.exec(serveLog)?.[1] ?? "?";
    const readyz = () => fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.status);
    assert.equal(await readyz(), 200);
    const exited = once(serveProcess, "exit");
    serveProcess.kill("SIGTERM");
    const giveUp = Date.now() + 900;
    while ((await readyz()) !== 503) {
      assert.ok(Date.now() < giveUp, "/readyz still 200 after SIGTERM");
      await sleep(20);
    }
    // Not ready, yet still deciding: Envoy's in-flight and late requests get real answers.
    const client = checkClient(Number(grpcAddr.split(":")[1]));
    const res = await client.check(
      buildCheckRequest({ token: "tks_prod_not-a-token", method: "GET", path: "/", host: "h" }),
    );
    client.close();
    assert.equal(res.status?.message, "malformed_token");
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    assert.match(serveLog, /"msg":"draining","signal":"SIGTERM","delay_ms":1000/);
  });
});
