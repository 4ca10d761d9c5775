// A per-token rate limit across three replicas sharing one redis-server: twice the limit is
// offered for 5 s, round-robin, and the allowed count must stay within ±5% of the limit.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { checkClient, headerMap } from "../harness/check-client.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";

const SCOPES = new URL("../fixtures/http-authz/scopes.yaml", import.meta.url).pathname;
/** prod/metered in the fixture scopes. */
const RATE = 50;
const BURST = 5;
const SECONDS = 5;

let redis: RedisServer;
const replicas: TestServer[] = [];

before(async () => {
  redis = await startRedis();
  const prefix = `--redis-prefix={rate-${randomBytes(4).toString("hex")}}:`;
  const extraArgs = ["--http-authz-addr=127.0.0.1:0", prefix];
  const first = await startTestServer({ redisUrl: redis.url, scopes: SCOPES, extraArgs });
  replicas.push(first);
  for (let i = 0; i < 2; i++) {
    const opts = { redisUrl: redis.url, scopes: SCOPES, extraArgs, hmacKeyFile: first.hmacKeyFile };
    replicas.push(await startTestServer(opts));
  }
});

after(async () => {
  for (const replica of replicas) await replica.stop();
  await redis.stop();
});

async function check(port: number, token: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/traefik/ns/prod`, {
    headers: {
      authorization: `Bearer ${token}`,
      "x-forwarded-method": "GET",
      "x-forwarded-host": "api.example.com",
      "x-forwarded-uri": "/v1/reports/load",
    },
  });
  await res.arrayBuffer();
  return res.status;
}

describe("rate limits across replicas", () => {
  it("allows the limit, within 5%, of twice the limit offered to three replicas", async () => {
    const backends = await openServerBackends(replicas[0] as TestServer);
    const { token } = await backends.tokens.issue({
      scope: "prod/metered",
      owner: "load",
      labels: {},
      createdBy: "test",
    });
    await backends.close();
    const ports = replicas.map((r) => r.httpAuthzPort ?? 0);
    const total = 2 * RATE * SECONDS;
    const gapMs = 1000 / (2 * RATE);
    const statuses: Promise<number>[] = [];
    const start = performance.now();
    let lastSent = start;
    for (let i = 0; i < total; i++) {
      const due = start + i * gapMs;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      lastSent = performance.now();
      statuses.push(check(ports[i % ports.length] ?? 0, token));
    }
    const results = await Promise.all(statuses);
    const spanS = (lastSent - start) / 1000;
    const allowed = results.filter((s) => s === 200).length;
    const limited = results.filter((s) => s === 429).length;
    const limit = RATE * SECONDS;
    const expected = BURST + RATE * spanS;
    console.log(
      `rate limit: offered ${total} requests over ${spanS.toFixed(2)} s to ${ports.length} replicas ` +
        `(${(total / spanS).toFixed(1)}/s); allowed ${allowed}, 429 ${limited}; ` +
        `limit ${RATE}/s × ${SECONDS} s = ${limit}, burst + rate × span = ${expected.toFixed(1)}; ` +
        `allowed/limit = ${((allowed / limit) * 100).toFixed(1)}%`,
    );
    assert.equal(allowed + limited, total, "every answer is an allow or a 429");
    assert.ok(Math.abs(allowed - limit) <= 0.05 * limit, `allowed ${allowed} vs limit ${limit}`);
    assert.ok(Math.abs(allowed - expected) <= 0.05 * expected, `allowed ${allowed} vs ${expected}`);
  });
});

describe("rate limits over Envoy's gRPC ext_authz", () => {
  it("a spent burst is RESOURCE_EXHAUSTED with a 429 and retry-after", async () => {
    const replica = replicas[0] as TestServer;
    const backends = await openServerBackends(replica);
    const { token } = await backends.tokens.issue({
      scope: "prod/slow-lane",
      owner: "batch",
      labels: {},
      createdBy: "test",
    });
    await backends.close();
    const client = checkClient(replica.grpcPort);
    try {
      const request = () =>
        buildCheckRequest({
          method: "GET",
          path: "/v1/reports/1",
          host: "h",
          namespace: "prod",
          token,
        });
      assert.equal((await client.check(request())).status?.code, 0);
      assert.equal((await client.check(request())).status?.code, 0);
      const res = await client.check(request());
      assert.equal(res.status?.code, 8, "RESOURCE_EXHAUSTED");
      assert.equal(res.status.message, "rate_limited");
      assert.equal(res.denied_response?.status?.code, "TooManyRequests");
      const headers = headerMap(res.denied_response.headers);
      assert.equal(headers["x-tokenscope-reason"], "rate_limited");
      const retry = Number(headers["retry-after"]);
      assert.ok(retry >= 1 && retry <= 10, `retry-after ${retry}`);
      assert.equal(headers["www-authenticate"], undefined);
      // Another replica shares the same budget.
      const other = checkClient((replicas[1] as TestServer).grpcPort);
      assert.equal((await other.check(request())).status?.code, 8);
      other.close();
    } finally {
      client.close();
    }
  });
});
