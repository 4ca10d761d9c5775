// The --scopes kubernetes flags of `serve`: defaults, KUBECONFIG, and what is refused.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { serveConfig, UsageError } from "../../src/config.ts";

const BASE = ["--scopes=kubernetes"];

describe("--scopes kubernetes flags", () => {
  it("defaults: all namespaces, 2m watchdog, 1m readiness grace, no kubeconfig path", () => {
    const c = serveConfig(BASE, {});
    assert.equal(c.scopes, "kubernetes");
    assert.equal(c.watchNamespace, undefined);
    assert.equal(c.kubeWatchTimeoutMs, 120_000);
    assert.equal(c.kubeReadyGraceMs, 60_000);
    assert.equal(c.kubeconfig, undefined);
  });

  it("takes KUBECONFIG from the environment, and --kubeconfig over it", () => {
    assert.equal(serveConfig(BASE, { KUBECONFIG: "/a:/b" }).kubeconfig, "/a:/b");
    assert.equal(serveConfig([...BASE, "--kubeconfig=/c"], { KUBECONFIG: "/a" }).kubeconfig, "/c");
    assert.equal(
      serveConfig(BASE, { TOKENSCOPE_KUBECONFIG: "/d", KUBECONFIG: "/a" }).kubeconfig,
      "/d",
    );
  });

  it("takes every flag from TOKENSCOPE_<FLAG> too", () => {
    const c = serveConfig(BASE, {
      TOKENSCOPE_WATCH_NAMESPACE: "prod",
      TOKENSCOPE_KUBE_WATCH_TIMEOUT: "30s",
      TOKENSCOPE_KUBE_READY_GRACE: "5m",
    });
    assert.deepEqual(
      [c.watchNamespace, c.kubeWatchTimeoutMs, c.kubeReadyGraceMs],
      ["prod", 30_000, 300_000],
    );
  });

  const refused: [string, RegExp][] = [
    ["--watch-namespace=Prod", /--watch-namespace: "Prod" is not a Kubernetes namespace name/],
    ["--watch-namespace=a_b", /--watch-namespace/],
    ["--kube-watch-timeout=100ms", /--kube-watch-timeout: must be between 500ms and 1h/],
    ["--kube-watch-timeout=2h", /--kube-watch-timeout: must be between/],
    ["--kube-watch-timeout=soon", /--kube-watch-timeout: "soon" is not a duration/],
    ["--kube-ready-grace=x", /--kube-ready-grace: "x" is not a duration/],
  ];
  for (const [flag, message] of refused) {
    it(`refuses ${flag}`, () => {
      assert.throws(
        () => serveConfig([...BASE, flag], {}),
        (err: unknown) => {
          assert.ok(err instanceof UsageError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
