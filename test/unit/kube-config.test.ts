// Finding the cluster: kubeconfig files as kubectl reads them, and a clear refusal when there is
// nothing usable, at start-up rather than on every retry.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openKubeConnection } from "../../src/kube/kube-config.ts";
import { tempDir } from "../harness/server.ts";

const dir = tempDir("kubeconfig-unit");

function kubeconfig(name: string, server: string, extra = "", token = "t0ken"): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: c-${name}, cluster: {server: "${server}"${extra}}}]`,
      `users: [{name: u-${name}, user: {token: ${token}}}]`,
      `contexts: [{name: x-${name}, context: {cluster: c-${name}, user: u-${name}}}]`,
      `current-context: x-${name}`,
    ].join("\n"),
  );
  return file;
}

describe("openKubeConnection", () => {
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME };
  after(() => {
    process.env.KUBECONFIG = saved.KUBECONFIG;
    process.env.HOME = saved.HOME;
  });

  it("uses the first file's current context and sends its bearer token", async () => {
    const a = kubeconfig("a", "https://10.0.0.1:6443/", "", "secret-a");
    const b = kubeconfig("b", "https://10.0.0.2:6443");
    const conn = openKubeConnection(`${a}:${b}`);
    assert.equal(conn.server, "https://10.0.0.1:6443");
    const opts = await conn.requestOptions();
    assert.equal((opts.headers as Record<string, string>).Authorization, "Bearer secret-a");
  });

  const refused: [string, () => string | undefined, RegExp][] = [
    ["a missing file", () => join(dir, "nope"), /ENOENT/],
    [
      "plain http without skip-tls-verify",
      () => kubeconfig("h", "http://10.0.0.3:8080"),
      /plain http/,
    ],
    ["a non-http server", () => kubeconfig("f", "ftp://x"), /not an http\(s\) URL/],
  ];
  for (const [what, path, message] of refused) {
    it(`refuses ${what}`, () => assert.throws(() => openKubeConnection(path()), message));
  }

  it("accepts plain http with insecure-skip-tls-verify (a local proxy)", () => {
    const file = kubeconfig("p", "http://127.0.0.1:8001", ", insecure-skip-tls-verify: true");
    assert.equal(openKubeConnection(file).server, "http://127.0.0.1:8001");
  });

  it("says so when there is no kubeconfig and no service account", () => {
    process.env.KUBECONFIG = "";
    process.env.HOME = tempDir("empty-home");
    assert.throws(() => openKubeConnection(undefined), /no kubeconfig found/);
  });
});
