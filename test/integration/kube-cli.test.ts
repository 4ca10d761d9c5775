// The `token` commands with --scopes kubernetes, run as a person would (bin/tokenscope as a child
// process, KUBECONFIG in its environment): they list the TokenScopes once, then act.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { READ_SPEC, tokenScope } from "../harness/kube-fixtures.ts";
import { TestKubeApi } from "../harness/kube-api.ts";
import { tempDir } from "../harness/server.ts";

const BIN = new URL("../../bin/tokenscope", import.meta.url).pathname;
let api: TestKubeApi;
let dir: string;

/** Asynchronously: the test API server answers from this same process. */
function cli(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: dir,
        encoding: "utf8",
        timeout: 20_000,
        env: { ...process.env, KUBECONFIG: api.kubeconfig, TOKENSCOPE_SCOPES: "kubernetes" },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

before(async () => {
  api = await TestKubeApi.start();
  dir = tempDir("kube-cli");
  api.apply(tokenScope("prod", "reports-read", READ_SPEC));
  api.apply(tokenScope("prod", "no-owner", { rules: READ_SPEC.rules }));
});

after(async () => {
  await api.stop();
});

describe("token commands with --scopes kubernetes", () => {
  it("issue checks the scope as listed from the API server", async () => {
    const ok = await cli(
      "token",
      "issue",
      "--scope",
      "prod/reports-read",
      "--owner",
      "alice",
      "-o",
      "json",
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match((JSON.parse(ok.stdout) as { token: string }).token, /^tks_dev_/);
    const missing = await cli("token", "issue", "--scope", "prod/nope", "--owner", "alice");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /scope prod\/nope does not exist/);
    const invalid = await cli("token", "issue", "--scope", "prod/no-owner", "--owner", "alice");
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /scope prod\/no-owner is not ready: spec\.owner: is required/);
    assert.equal(api.patches().length, 0, "the CLI never writes status");
  });

  it("with the API server down, fails with the reason instead of acting on no scopes", async () => {
    await api.stop();
    const r = await cli("token", "issue", "--scope", "prod/reports-read", "--owner", "alice");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot list TokenScopes from the Kubernetes API: .*ECONNREFUSED/);
    console.log(`# token issue gave up after ${r.ms} ms with the API server down`);
    await api.start();
  });
});
