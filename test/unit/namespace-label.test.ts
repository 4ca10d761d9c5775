// A caller names the destination namespace (a route's context_extensions, an HTTP authz URL); it
// becomes a metric label only when some TokenScope lives there, so made-up namespaces cannot mint
// one series each.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCheckService } from "../../src/check/check-service.ts";
import { compileTokenScope } from "../../src/domain/scope.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { ScopeIndex } from "../../src/scopes/scope-index.ts";
import { createFileStore } from "../../src/store/file-store.ts";
import { tempDir } from "../harness/server.ts";

describe("the namespace label of tokenscope_checks_total", () => {
  it("is the namespace when a scope lives there, else _other, however many are named", async () => {
    const scopes = new ScopeIndex();
    scopes.replaceAll([
      compileTokenScope(
        {
          apiVersion: "tokenscope.dev/v1alpha1",
          kind: "TokenScope",
          metadata: { name: "reports-read", namespace: "prod" },
          spec: { owner: "team", rules: [{ paths: ["/v1/*"], methods: ["GET"] }] },
        },
        { maxTTLCapMs: 3_600_000_000 },
      ),
    ]);
    const metrics = createMetrics();
    const store = await createFileStore({ dir: tempDir("nslabel"), retentionMs: 1000 });
    const check = createCheckService({
      environment: "prod",
      serverNamespace: undefined,
      hmacKey: new Uint8Array(32),
      store,
      scopes,
      metrics,
      logger: createLogger({ level: "error", write: () => undefined }),
      clock: Date.now,
      auditAllowSample: 0,
    });
    const ask = (namespace: string) =>
      check({
        authorization: [],
        route: { method: "GET", path: "/v1/x", host: "h" },
        source: {},
        namespaceSources: { contextExtensionNamespace: namespace },
        requestId: undefined,
      });
    await ask("prod");
    for (let i = 0; i < 500; i++) await ask(`made-up-${i}`);
    const text = await metrics.registry.metrics();
    const labels = new Set(
      [...text.matchAll(/^tokenscope_checks_total\{[^}]*namespace="([^"]*)"/gm)].map((m) => m[1]),
    );
    assert.deepEqual([...labels].sort(), ["_other", "prod"]);
    await store.close();
  });
});
