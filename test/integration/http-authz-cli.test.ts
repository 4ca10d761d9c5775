// `tokenscope serve` as a process with HTTP authorization switched on by environment variables,
// asked the way the README's curl line asks it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDir } from "../harness/server.ts";

const BIN = new URL("../../bin/tokenscope", import.meta.url).pathname;

let dir: string;
let serveProcess: ChildProcess;
let serveLog = "";
let authzPort = "";

before(async () => {
  dir = tempDir("http-cli");
  serveProcess = spawn(
    process.execPath,
    [BIN, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
    {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        TOKENSCOPE_HTTP_AUTHZ_ADDR: "127.0.0.1:0",
        TOKENSCOPE_TRUSTED_PROXIES: "127.0.0.1/32",
      },
    },
  );
  serveProcess.stderr?.on("data", (chunk: Buffer) => (serveLog += chunk.toString()));
  const giveUp = Date.now() + 15_000;
  while (!/"msg":"tokenscope serving"/.test(serveLog)) {
    if (Date.now() > giveUp || serveProcess.exitCode !== null)
      throw new Error(`serve did not start:\n${serveLog}`);
    await sleep(50);
  }
  authzPort = /"http_authz_port":(\d+)/.exec(serveLog)?.[1] ?? "";
});

after(async () => {
  if (serveProcess.exitCode === null) {
    serveProcess.kill("SIGKILL");
    await once(serveProcess, "exit");
  }
});

function issue(): string {
  const r = spawnSync(
    process.execPath,
    [BIN, "token", "issue", "--scope", "prod/reports-read", "--owner", "me", "-o", "json"],
    { cwd: dir, encoding: "utf8", timeout: 20_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { token: string }).token;
}

const nginxAsks = (token: string, method: string) =>
  fetch(`http://127.0.0.1:${authzPort}/nginx/ns/prod`, {
    headers: {
      authorization: `Bearer ${token}`,
      "x-original-method": method,
      "x-original-uri": "/v1/reports/2026",
      "x-original-host": "reports.prod.svc.cluster.local",
    },
  });

describe("serve with TOKENSCOPE_HTTP_AUTHZ_ADDR", () => {
  it("logs the HTTP authorization port it bound", () => {
    assert.match(authzPort, /^\d+$/, serveLog);
  });

  it("answers the README's nginx-style request: allowed GET, denied POST", async () => {
    const token = issue();
    // The embedded store notices another process's write within its reload interval.
    let allowed = await nginxAsks(token, "GET");
    for (const giveUp = Date.now() + 5000; allowed.status === 401 && Date.now() < giveUp;) {
      await sleep(100);
      allowed = await nginxAsks(token, "GET");
    }
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get("x-tokenscope-scope"), "prod/reports-read");
    const denied = await nginxAsks(token, "POST");
    assert.equal(denied.status, 403);
    assert.deepEqual(await denied.json(), {
      error: "the token's scope does not allow this host, path or method",
      reason: "route_not_allowed",
    });
  });

  it("refuses a bad --trusted-proxies before serving", () => {
    const r = spawnSync(process.execPath, [BIN, "serve", "--trusted-proxies", "10.0.0.1/8"], {
      cwd: dir,
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--trusted-proxies: 10\.0\.0\.1\/8 has host bits set/);
  });
});
