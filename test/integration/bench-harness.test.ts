// A smoke test of the benchmark's own machinery (test/bench/), not of speed: the mix's bodies,
// h2load picking up the rotated body file, the seeded records being the store's own, and the
// baseline server. No figure is asserted.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { authorizationService } from "../../src/envoy/protos.ts";
import { readHmacKey } from "../../src/hmac-key.ts";
import { h2load } from "../bench/h2load.ts";
import { rotateBodies } from "../bench/rotator.ts";
import { startBaseline } from "../bench/targets.ts";
import {
  allowedRequest,
  DENY_REASONS,
  ENVIRONMENT,
  mixBodies,
  PREFIX,
  seedTokens,
  tokenString,
  benchToken,
  writeScopes,
} from "../bench/workload.ts";
import { checkClient } from "../harness/check-client.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { startTestServer, tempDir, writeHmacKey, type TestServer } from "../harness/server.ts";

const TOKENS = 300;
const REVOKED_FROM = 280;
const DISTINCT = 90;

let redis: RedisServer;
let server: TestServer;
let dir: string;

before(async () => {
  dir = tempDir("bench-smoke");
  redis = await startRedis();
  const keyFile = writeHmacKey(dir);
  await seedTokens({
    port: redis.port,
    key: readHmacKey(keyFile),
    count: TOKENS,
    revokedFrom: REVOKED_FROM,
  });
  server = await startTestServer({
    redisUrl: redis.url,
    hmacKeyFile: keyFile,
    environment: ENVIRONMENT,
    scopes: writeScopes(join(dir, "scopes")),
    extraArgs: [`--redis-prefix=${PREFIX}`, "--audit-allow-sample=0"],
  });
});

after(async () => {
  await server.stop();
  await redis.stop();
});

function decode(frame: Buffer): { token: string } {
  const deserialize = authorizationService().Check?.requestDeserialize;
  assert.ok(deserialize);
  assert.equal(frame[0], 0, "uncompressed");
  assert.equal(frame.readUInt32BE(1), frame.length - 5, "length prefix");
  const req = deserialize(frame.subarray(5)) as {
    attributes: { request: { http: { headers: Record<string, string> } } };
  };
  return {
    token: (req.attributes.request.http.headers.authorization ?? "").replace(/^Bearer /, ""),
  };
}

describe("bench harness", () => {
  it("the mix is 9 allowed to 1 denied, every body of one length, each a gRPC frame", () => {
    const bodies = mixBodies(DISTINCT, REVOKED_FROM);
    assert.equal(bodies.length, DISTINCT + DISTINCT / 9);
    assert.equal(new Set(bodies.map((b) => b.length)).size, 1);
    assert.equal(decode(bodies[0] as Buffer).token, tokenString(benchToken(0)));
    assert.equal(decode(bodies[10] as Buffer).token, tokenString(benchToken(9)));
  });

  it("seeded records are read by the real server: allowed, and revoked past REVOKED_FROM", async () => {
    const client = checkClient(server.grpcPort);
    assert.equal((await client.check(allowedRequest(3))).status?.code, 0);
    assert.equal((await client.check(allowedRequest(REVOKED_FROM + 1))).status?.message, "revoked");
    client.close();
  });

  it("h2load re-reads the rotated body file, so one run carries many tokens and the mix", async () => {
    const bodyFile = join(dir, "body.bin");
    const bodies = mixBodies(DISTINCT, REVOKED_FROM);
    writeFileSync(bodyFile, bodies[0] as Buffer);
    const rotation = rotateBodies(bodyFile, bodies);
    let result;
    try {
      result = await h2load({
        port: server.grpcPort,
        bodyFile,
        clients: 1,
        streams: 2,
        durationS: 2,
        warmUpS: 0,
        logFile: join(dir, "h2load.log"),
      });
    } finally {
      await rotation.stop();
    }
    assert.ok(result.requests > 0 && result.failed === 0 && result.non2xx === 0);
    assert.ok(result.p50Ms > 0 && result.p50Ms <= result.p99Ms && result.p99Ms <= result.p999Ms);
    const metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    const scopes = new Set(
      [...metrics.matchAll(/tokenscope_checks_total\{decision="allow"[^}]*scope="([^"]+)"\}/g)].map(
        (m) => m[1],
      ),
    );
    assert.ok(
      scopes.size >= 2,
      `allowed checks for ${scopes.size} scope(s); the body did not change`,
    );
    const reasons = [
      ...metrics.matchAll(/tokenscope_checks_total\{decision="deny",reason="(\w+)"/g),
    ].map((m) => m[1]);
    const expected = new Set<string>([...DENY_REASONS, "store_unavailable"]);
    for (const r of reasons) assert.ok(expected.has(r ?? ""), `unexpected deny reason ${r ?? ""}`);
  });

  it("the baseline answers every Check with OK", async () => {
    const baseline = await startBaseline(dir);
    const client = checkClient(baseline.grpcPort);
    assert.equal((await client.check(allowedRequest(REVOKED_FROM + 1))).status?.code, 0);
    client.close();
    await baseline.stop();
  });
});
