// Readiness of `serve --scopes kubernetes`: not ready (HTTP /readyz and gRPC health) until the
// first list of TokenScopes succeeds, and again when the watch stays broken past the grace;
// ready again once the API server is back.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { grpcHealth } from "../harness/grpc-health.ts";
import { eventually, READ_SPEC, readyz, tokenScope } from "../harness/kube-fixtures.ts";
import { TestKubeApi } from "../harness/kube-api.ts";
import { startTestServer, type TestServer } from "../harness/server.ts";

let api: TestKubeApi;
let server: TestServer;

before(async () => {
  api = await TestKubeApi.start();
  api.apply(tokenScope("prod", "reports-read", READ_SPEC));
  await api.stop();
});

after(async () => {
  await server.stop();
  await api.stop();
});

async function state(): Promise<{ http: number; body: string; grpc: string }> {
  const r = await readyz(server.httpPort);
  return { http: r.status, body: r.body, grpc: await grpcHealth(server.grpcPort) };
}

describe("readiness follows the TokenScope watch", () => {
  it("with the API server down at start-up, the server starts but is not ready", async () => {
    const started = Date.now();
    server = await startTestServer({
      scopes: "kubernetes",
      extraArgs: [
        `--kubeconfig=${api.kubeconfig}`,
        "--kube-watch-timeout=2s",
        "--kube-ready-grace=1s",
      ],
    });
    console.log(`# serve started in ${Date.now() - started} ms with the API server down`);
    for (let i = 0; i < 3; i++) {
      const s = await state();
      assert.equal(s.http, 503);
      assert.match(s.body, /TokenScopes not listed yet/);
      assert.equal(s.grpc, "NOT_SERVING");
      await sleep(300);
    }
  });

  it("becomes ready once the API server answers", async () => {
    await api.start();
    const { ms } = await eventually("ready", async () => {
      const s = await state();
      return s.http === 200 && s.grpc === "SERVING" ? s : undefined;
    });
    console.log(`# ready ${ms} ms after the API server came up`);
  });

  it("turns not ready when the watch stays broken past the grace, and ready when it is back", async () => {
    await api.stop();
    const down = Date.now();
    const { value } = await eventually("not ready", async () => {
      const s = await state();
      return s.http === 503 && s.grpc === "NOT_SERVING" ? s : undefined;
    });
    console.log(`# not ready ${Date.now() - down} ms after the API server went down (grace 1s)`);
    assert.match(value.body, /TokenScope watch broken for \d+s/);
    await api.start();
    await eventually("ready again", async () => {
      const s = await state();
      return s.http === 200 && s.grpc === "SERVING" ? true : undefined;
    });
  });

  it("a short break within the grace does not flip readiness", async () => {
    await eventually("an open watch", () => (api.openWatches > 0 ? true : undefined));
    api.cutWatches();
    for (let i = 0; i < 5; i++) {
      assert.equal((await state()).http, 200);
      await sleep(100);
    }
  });
});
