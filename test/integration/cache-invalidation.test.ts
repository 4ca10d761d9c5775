// The token cache across replicas, on a real redis-server: two servers share one Redis and one
// HMAC key, each with its own cache and its own pub/sub connection. Cache TTLs are set to a
// minute here, so every deny seen within the test's polling window comes from invalidation
// (a message, or the cache being dropped), never from an entry expiring.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import {
  openServerBackends,
  startTestServer,
  tempDir,
  writeHmacKey,
  type TestServer,
} from "../harness/server.ts";
import { checkClient, type CheckClient } from "../harness/check-client.ts";

const PREFIX = "{ts-cache}:";
const CACHE_ARGS = [`--redis-prefix=${PREFIX}`, "--cache-ttl=60s", "--cache-negative-ttl=30s"];

let redis: RedisServer;
let replicas: TestServer[];
let clients: CheckClient[];
let backends: Awaited<ReturnType<typeof openServerBackends>>;

const readRequest = (token: string) =>
  buildCheckRequest({
    method: "GET",
    path: "/v1/reports/2026",
    host: "reports.prod.svc.cluster.local",
    namespace: "prod",
    token,
  });

async function decision(client: CheckClient, token: string): Promise<string> {
  try {
    const res = await client.check(readRequest(token));
    return res.status?.code === 0 ? "allow" : (res.status?.message ?? "deny");
  } catch (err) {
    return `grpc error: ${(err as Error).message}`;
  }
}

async function issue(owner: string) {
  return backends.tokens.issue({ scope: "prod/reports-read", owner, labels: {}, createdBy: "t" });
}

async function cacheLookups(server: TestServer): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tokenscope_cache_lookups_total\{result="(\w+)"\} (\d+)/gm)) {
    out[m[1] ?? ""] = Number(m[2]);
  }
  return out;
}

/** Polls until `want`; returns the milliseconds it took. */
async function until(
  what: () => Promise<string>,
  want: string,
  timeoutMs: number,
): Promise<number> {
  const start = performance.now();
  let last = "";
  while (performance.now() - start < timeoutMs) {
    last = await what();
    if (last === want) return performance.now() - start;
    await sleep(5);
  }
  assert.fail(`still "${last}" after ${timeoutMs} ms, wanted "${want}"`);
}

/** Makes a cache hold the token: allowed, then served from memory (once its feed is live). */
async function warm(index: number, token: string): Promise<void> {
  const server = replicas[index];
  const c = clients[index];
  assert.ok(server && c);
  await until(
    async () => {
      assert.equal(await decision(c, token), "allow");
      const hitsBefore = (await cacheLookups(server)).hit ?? 0;
      assert.equal(await decision(c, token), "allow");
      return ((await cacheLookups(server)).hit ?? 0) > hitsBefore ? "cached" : "not cached";
    },
    "cached",
    10_000,
  );
}

before(async () => {
  redis = await startRedis({ durable: true });
  const hmacKeyFile = writeHmacKey(tempDir("cache"));
  replicas = [];
  for (let i = 0; i < 2; i++) {
    replicas.push(
      await startTestServer({ redisUrl: redis.url, hmacKeyFile, extraArgs: CACHE_ARGS }),
    );
  }
  clients = replicas.map((r) => checkClient(r.grpcPort));
  backends = await openServerBackends(replicas[0] as TestServer);
});

after(async () => {
  for (const c of clients) c.close();
  await backends.close();
  for (const r of replicas) await r.stop();
  await redis.stop();
});

const [A, B] = [0, 1];
const client = (i: number): CheckClient => clients[i] as CheckClient;

describe("token cache invalidation across replicas", () => {
  it("a token revoked through the store is denied by every replica, well before the TTL", async () => {
    const { token, record } = await issue("rev");
    await warm(A, token);
    await warm(B, token);
    await backends.tokens.revoke(record.id, "test");
    const took = await Promise.all(
      [A, B].map((i) => until(() => decision(client(i), token), "revoked", 10_000)),
    );
    process.stdout.write(
      `# revocation seen by replicas after ${took.map((ms) => ms.toFixed(1)).join(", ")} ms\n`,
    );
  });

  it("a rotated-out token with no grace is denied by the other replica at once", async () => {
    const { token, record } = await issue("rot");
    await warm(B, token);
    await backends.tokens.rotate(record.id, { graceMs: 0, by: "test" });
    await until(() => decision(client(B), token), "rotated", 10_000);
  });

  it("an id remembered as unknown is found once it is created", async () => {
    const { token, record } = await issue("neg");
    // Remove it behind the cache's back, let replica B remember "unknown", then create it again.
    const key = `${PREFIX}token:${record.id}`;
    const raw = await redis.command("GET", key);
    assert.ok(raw);
    await redis.command("DEL", key);
    assert.equal(await decision(client(B), token), "unknown_token");
    assert.equal(await decision(client(B), token), "unknown_token");
    assert.ok(((await cacheLookups(replicas[B] as TestServer)).negative_hit ?? 0) >= 1);
    await backends.store.create(JSON.parse(raw) as typeof record);
    await until(() => decision(client(B), token), "allow", 10_000);
  });

  it("recording a token's use writes it to the store but keeps the token cached on every replica", async () => {
    const { token, record } = await issue("used");
    await warm(A, token);
    const at = Date.now();
    await backends.store.recordUsage([{ id: record.id, at, source: "10.0.0.9" }]);
    assert.equal((await backends.store.get(record.id))?.lastUsedAt, at);
    // Messages on the channel arrive in order: once a later revocation is seen on A, any
    // announcement of the usage write would have been seen too.
    const marker = await issue("marker");
    await warm(A, marker.token);
    await backends.tokens.revoke(marker.record.id, "test");
    await until(() => decision(client(A), marker.token), "revoked", 10_000);
    const hitsBefore = (await cacheLookups(replicas[A] as TestServer)).hit ?? 0;
    assert.equal(await decision(client(A), token), "allow");
    assert.equal((await cacheLookups(replicas[A] as TestServer)).hit ?? 0, hitsBefore + 1);
  });

  it("junk tokens are rejected by the checksum before any cache or store lookup", async () => {
    const { token } = await issue("junk");
    const total = async () =>
      Object.values(await cacheLookups(replicas[A] as TestServer)).reduce((a, b) => a + b, 0);
    const before = await total();
    for (let i = 0; i < 20; i++) {
      const junk = token.slice(0, 20) + String(i).padStart(2, "0") + token.slice(22);
      assert.equal(await decision(client(A), junk), "malformed_token");
    }
    assert.equal(await total(), before, "no lookup was made for a token failing its checksum");
  });

  it("when its pub/sub connection is killed, a replica drops its cache: no stale allow", async () => {
    const { token, record } = await issue("kill");
    await warm(B, token);
    // Revoke behind the cache's back (no announcement, as if the message were lost): the cache
    // would keep allowing for its 60 s TTL. Only dropping the cache can turn this into a deny.
    const key = `${PREFIX}token:${record.id}`;
    const raw = await redis.command("GET", key);
    assert.ok(raw);
    const revoked = { ...(JSON.parse(raw) as object), revokedAt: Date.now() };
    await redis.command("SET", key, JSON.stringify(revoked), "KEEPTTL");
    assert.equal(await decision(client(B), token), "allow", "a lost message is not seen");
    await redis.command("CLIENT", "KILL", "TYPE", "pubsub");
    await until(() => decision(client(B), token), "revoked", 10_000);
  });

  it("while Redis is down checks fail closed, and after it returns the cache works again", async () => {
    const { token, record } = await issue("restart");
    await warm(B, token);
    await redis.kill("SIGKILL");
    await until(() => decision(client(B), token), "store_unavailable", 10_000);
    const bypass = (await cacheLookups(replicas[B] as TestServer)).bypass ?? 0;
    assert.ok(bypass >= 1, "lookups bypass the cache while its feed is down");
    await redis.start();
    await until(() => decision(client(B), token), "allow", 15_000);
    // Subscribed again: a hit is served, and a revocation still reaches the cache.
    await until(
      async () => {
        const before = (await cacheLookups(replicas[B] as TestServer)).hit ?? 0;
        await decision(client(B), token);
        return ((await cacheLookups(replicas[B] as TestServer)).hit ?? 0) > before ? "hit" : "no";
      },
      "hit",
      15_000,
    );
    await backends.tokens.revoke(record.id, "test");
    await until(() => decision(client(B), token), "revoked", 10_000);
  });
});
