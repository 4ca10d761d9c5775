// A real nginx with auth_request to tokenscope's /nginx/ns/prod, in front of a recording
// upstream, running the README's config (deploy/examples/nginx/tokenscope.conf) on loopback.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatToken, hashSecret, sealRecord } from "../../src/domain/token.ts";
import { startNginx, type NginxServer } from "../harness/nginx.ts";
import { rawRequest, type RawResponse } from "../harness/raw-http.ts";
import { startRedis, type RedisServer, CLUSTER_MODE } from "../harness/redis.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";
import { startUpstream, type Upstream } from "../harness/upstream.ts";

const SCOPES = new URL("../fixtures/http-authz/scopes.yaml", import.meta.url).pathname;

let redis: RedisServer;
let server: TestServer;
let upstream: Upstream;
let nginx: NginxServer;
let backends: Awaited<ReturnType<typeof openServerBackends>>;

async function issue(scope: string, labels: Record<string, string> = {}) {
  return backends.tokens.issue({ scope, owner: "alice", labels, createdBy: "test" });
}

/** A record with labels the CLI would refuse, written straight into the store. */
async function rawLabelledToken(id: string, labels: Record<string, string>): Promise<string> {
  const now = Date.now();
  const secret = "S".repeat(32);
  await backends.store.create(
    sealRecord(backends.hmacKey, {
      id,
      hash: hashSecret(backends.hmacKey, { environment: "prod", id, secret }),
      scope: "prod/tenant-data",
      owner: "test",
      environment: "prod",
      labels,
      description: "",
      createdAt: now - 1000,
      createdBy: "test",
      notBefore: now - 1000,
      expiresAt: now + 3_600_000,
    }),
  );
  return formatToken("prod", id, secret);
}

function get(path: string, token?: string, extra: [string, string][] = []): Promise<RawResponse> {
  const headers: [string, string][] = [["host", "localhost"], ...extra];
  if (token !== undefined) headers.push(["authorization", `Bearer ${token}`]);
  return rawRequest(nginx.port, { path, headers });
}

/** What the upstream received for the one request sent since `before`. */
function lastSeen(before: number) {
  assert.equal(upstream.seen.length, before + 1, "the upstream got exactly one request");
  const seen = upstream.seen.at(-1);
  assert.ok(seen);
  return seen;
}

function assertDenied(res: RawResponse, status: number, reason: string): void {
  assert.equal(res.status, status, `status for ${reason}: ${res.body}`);
  assert.deepEqual(res.headers["x-tokenscope-reason"], [reason]);
  assert.equal(res.headers["content-type"]?.[0], "application/json");
  const body = JSON.parse(res.body) as { error: string; reason: string };
  assert.equal(body.reason, reason);
  assert.ok(body.error.length > 10, `a message: ${body.error}`);
}

before(async () => {
  redis = await startRedis();
  server = await startTestServer({
    redisUrl: redis.url,
    scopes: SCOPES,
    extraArgs: ["--http-authz-addr=127.0.0.1:0", "--trusted-proxies=127.0.0.1/32"],
  });
  backends = await openServerBackends(server);
  upstream = await startUpstream();
  nginx = await startNginx({ tokenscope: server.httpAuthzPort ?? 0, app: upstream.port });
});

after(async () => {
  await nginx.stop();
  await upstream.close();
  await backends.close();
  await server.stop();
  await redis.stop();
});

describe("nginx auth_request in front of an API", () => {
  it("passes an allowed request with tokenscope's identity headers and without the token", async () => {
    const { token, record } = await issue("prod/reports-read");
    const count = upstream.seen.length;
    const forged: [string, string][] = [
      ["x-tokenscope-token-id", "forged"],
      ["x-tokenscope-scope", "prod/admin"],
      ["x-tokenscope-dry-run-deny", "forged"],
      ["x-tokenscope-reason", "forged"],
    ];
    const res = await get("/v1/reports/2026?format=csv", token, forged);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, "upstream ok\n");
    const seen = lastSeen(count);
    assert.equal(seen.url, "/v1/reports/2026?format=csv");
    assert.deepEqual(seen.distinct["x-tokenscope-token-id"], [record.id]);
    assert.deepEqual(seen.distinct["x-tokenscope-scope"], ["prod/reports-read"]);
    assert.deepEqual(seen.distinct["x-tokenscope-owner"], ["alice"]);
    assert.equal(seen.headers.authorization, undefined, "the upstream never sees the token");
    assert.equal(seen.headers["x-tokenscope-dry-run-deny"], undefined);
    assert.equal(seen.headers["x-tokenscope-reason"], undefined);
  });

  it("answers 401 missing_token with a challenge and never calls the upstream", async () => {
    const count = upstream.seen.length;
    const res = await get("/v1/reports/2026");
    assertDenied(res, 401, "missing_token");
    assert.equal(res.headers["www-authenticate"]?.length, 1, "one challenge");
    assert.match(String(res.headers["www-authenticate"]), /^Bearer realm="tokenscope"$/);
    assert.equal(upstream.seen.length, count);
  });

  it("answers 401 unknown_token for a well-formed token nobody issued", async () => {
    const res = await get("/v1/reports/2026", formatToken("prod", "Nobody000001", "x".repeat(32)));
    assertDenied(res, 401, "unknown_token");
  });

  it("never lets a request with two authorization headers through", async () => {
    // nginx refuses it itself (400); tokenscope would deny it malformed_token (fixture tests).
    const { token } = await issue("prod/reports-read");
    const other = formatToken("prod", "Nobody000001", "x".repeat(32));
    const count = upstream.seen.length;
    const res = await get("/v1/reports/2026", token, [["authorization", `Bearer ${other}`]]);
    assert.equal(res.status, 400);
    assert.equal(upstream.seen.length, count);
  });

  it("answers 403 route_not_allowed to a read token that writes", async () => {
    const { token } = await issue("prod/reports-read");
    const count = upstream.seen.length;
    const res = await rawRequest(nginx.port, {
      method: "POST",
      path: "/v1/reports",
      headers: [
        ["host", "localhost"],
        ["authorization", `Bearer ${token}`],
      ],
      body: "{}",
    });
    assertDenied(res, 403, "route_not_allowed");
    assert.equal(upstream.seen.length, count);
  });

  it("answers 429 rate_limited with retry-after once the token's burst is spent", async () => {
    const { token } = await issue("prod/slow-lane");
    assert.equal((await get("/v1/reports/1", token)).status, 200);
    assert.equal((await get("/v1/reports/2", token)).status, 200);
    const res = await get("/v1/reports/3", token);
    assertDenied(res, 429, "rate_limited");
    const retry = Number(res.headers["retry-after"]?.[0]);
    assert.ok(retry >= 1 && retry <= 10, `retry-after ${retry} s`);
  });

  it("lets a DryRun scope's rate-limited request through, telling the upstream", async () => {
    const { token } = await issue("prod/slow-lane-dryrun");
    assert.equal((await get("/v1/reports/1", token)).status, 200);
    const count = upstream.seen.length;
    assert.equal((await get("/v1/reports/2", token)).status, 200);
    assert.deepEqual(lastSeen(count).distinct["x-tokenscope-dry-run-deny"], ["rate_limited"]);
  });
});

describe("nginx when tokenscope cannot answer", () => {
  it(
    "answers 503 store_unavailable while the token store hangs",
    { skip: CLUSTER_MODE && "pauses a single redis-server" },
    async (t) => {
      const { token } = await issue("prod/reports-read");
      await redis.kill("SIGSTOP");
      t.after(() => redis.kill("SIGCONT"));
      const res = await get("/v1/reports/2026", token);
      assertDenied(res, 503, "store_unavailable");
      assert.deepEqual(res.headers["retry-after"], ["1"]);
    },
  );
});

describe("token-bound data domains through nginx", () => {
  const denied: string[] = [
    "/v1/tenants/globex/reports",
    "/v1/tenants/acme/../globex/reports",
    "/v1/tenants/acme/%2e%2e/globex/reports",
    "/v1/tenants/acme/%2E%2E/globex/reports",
    "/v1/tenants/acme%2F..%2Fglobex/reports",
    "/v1/tenants/acme%2fglobex",
    "/v1/tenants/acme/..;/globex",
    "/v1/tenants/acme/.%2e/globex",
    "/v1/tenants//acme/reports",
  ];

  it("a token labelled tenant=acme reads acme's data", async () => {
    const { token } = await issue("prod/tenant-data", { tenant: "acme" });
    for (const path of ["/v1/tenants/acme", "/v1/tenants/acme/reports/7", "/v1/tenants/%61cme/x"]) {
      const res = await get(path, token);
      assert.equal(res.status, 200, `${path}: ${res.body}`);
    }
  });

  for (const path of denied) {
    it(`a token labelled tenant=acme is denied ${path}`, async () => {
      const { token } = await issue("prod/tenant-data", { tenant: "acme" });
      const count = upstream.seen.length;
      assertDenied(await get(path, token), 403, "route_not_allowed");
      assert.equal(upstream.seen.length, count);
    });
  }

  it("a label value that is not one safe path segment matches nothing", async () => {
    const cases: [string, Record<string, string>, string][] = [
      ["Slash0000001", { tenant: "acme/../globex" }, "/v1/tenants/acme/../globex/x"],
      ["Slash0000002", { tenant: "acme/x" }, "/v1/tenants/acme/x"],
      ["Dots00000001", { tenant: ".." }, "/v1/tenants/../x"],
      ["Empty0000001", { tenant: "" }, "/v1/tenants//x"],
      ["NoLabel00001", {}, "/v1/tenants/acme/x"],
    ];
    for (const [id, labels, path] of cases) {
      const token = await rawLabelledToken(id, labels);
      assertDenied(await get(path, token), 403, "route_not_allowed");
    }
  });
});
