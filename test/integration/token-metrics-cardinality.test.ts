// The per-token table's hard cap and idle eviction on the real server (embedded store, gRPC
// Checks), read from its real /metrics exposition.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";
import { checkClient, type CheckClient } from "../harness/check-client.ts";

const CAP = 4;
const IDLE_MS = 2000;

let server: TestServer;
let client: CheckClient;
let backends: Awaited<ReturnType<typeof openServerBackends>>;
const issued: { token: string; id: string }[] = [];

async function check(token: string, path = "/v1/reports/1"): Promise<number | undefined> {
  const res = await client.check(
    buildCheckRequest({
      method: "GET",
      path,
      host: "reports.prod.svc.cluster.local",
      namespace: "prod",
      token,
    }),
    5000,
  );
  return res.status?.code;
}

async function exportedIds(): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const ids = [...text.matchAll(/^tokenscope_token_checks_total\{token_id="([^"]+)"/gm)];
  return [...new Set(ids.map((m) => m[1] ?? ""))].sort();
}

before(async () => {
  server = await startTestServer({
    extraArgs: [`--metrics-max-tokens=${CAP}`, `--metrics-token-idle=${IDLE_MS / 1000}s`],
  });
  client = checkClient(server.grpcPort);
  backends = await openServerBackends(server);
  for (let i = 0; i < 4 * CAP; i++) {
    const { token, record } = await backends.tokens.issue({
      scope: "prod/reports-read",
      owner: `owner-${i}`,
      labels: {},
      createdBy: "cardinality-test",
    });
    issued.push({ token, id: record.id });
  }
  // The server's embedded store re-reads the file on the first lookup after its 200 ms reload
  // interval; past that, its next lookup sees every token issued above.
  await sleep(500);
});

after(async () => {
  client.close();
  await backends.close();
  await server.stop();
});

describe("per-token metrics cardinality", () => {
  it("exports at most the cap plus _overflow with three times the cap of tokens", async () => {
    for (const { token } of issued.slice(0, 3 * CAP)) {
      assert.equal(await check(token), 0, "allowed");
      assert.equal(await check(token, "/v1/other"), 7, "route_not_allowed: a second label set");
    }
    const ids = await exportedIds();
    assert.ok(ids.length <= CAP + 1, `${ids.length} ids exported`);
    assert.deepEqual(ids, [...issued.slice(0, CAP).map((t) => t.id), "_overflow"].sort());
  });

  it("drops every series of an idle token and gives its slot to a new one", async () => {
    const evicted = issued.slice(0, CAP).map((t) => t.id);
    await sleep(IDLE_MS + 1500); // idle, plus one sweep period
    const newcomers = issued.slice(3 * CAP, 4 * CAP);
    for (const { token } of newcomers) await check(token);
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    for (const id of evicted) assert.ok(!text.includes(id), `no series of evicted ${id} remain`);
    assert.deepEqual(await exportedIds(), [...newcomers.map((t) => t.id), "_overflow"].sort());
  });
});
