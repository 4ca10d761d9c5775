// The HTTP authorization server on its own, over real HTTP: Envoy HTTP and Traefik requests from
// fixtures, the endpoint paths, and what a client might try to smuggle through a proxy.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { rawRequest, type RawResponse } from "../harness/raw-http.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";

const FIXTURES = new URL("../fixtures/http-authz/", import.meta.url);
const SCOPES = new URL("scopes.yaml", FIXTURES).pathname;

interface Fixture {
  readonly method: string;
  readonly path: string;
  readonly headers: [string, string][];
}

function fixture(name: string, token: string): Fixture {
  const text = readFileSync(new URL(name, FIXTURES), "utf8").replaceAll("{{TOKEN}}", token);
  return JSON.parse(text) as Fixture;
}

let redis: RedisServer;
let server: TestServer;
let backends: Awaited<ReturnType<typeof openServerBackends>>;
let port: number;

const issue = async (scope: string) =>
  backends.tokens.issue({ scope, owner: "bob", labels: {}, createdBy: "test" });

function send(f: Fixture): Promise<RawResponse> {
  return rawRequest(port, f);
}

function assertAllowed(res: RawResponse, id: string): void {
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(res.headers["x-tokenscope-token-id"], [id]);
  assert.deepEqual(res.headers["x-tokenscope-scope"], ["prod/reports-read"]);
  assert.deepEqual(res.headers["x-tokenscope-owner"], ["bob"]);
  assert.equal(res.headers["x-tokenscope-reason"], undefined);
}

function assertDenied(res: RawResponse, status: number, reason: string): void {
  assert.equal(res.status, status, res.body);
  assert.deepEqual(res.headers["x-tokenscope-reason"], [reason]);
  assert.deepEqual(res.headers["content-type"], ["application/json"]);
  assert.equal(res.headers["x-tokenscope-token-id"], undefined, "a deny names no token");
  assert.equal((JSON.parse(res.body) as { reason: string }).reason, reason);
}

before(async () => {
  redis = await startRedis();
  server = await startTestServer({
    redisUrl: redis.url,
    scopes: SCOPES,
    extraArgs: ["--http-authz-addr=127.0.0.1:0", "--trusted-proxies=127.0.0.1/32,::1/128"],
  });
  backends = await openServerBackends(server);
  port = server.httpAuthzPort ?? 0;
});

after(async () => {
  await backends.close();
  await server.stop();
  await redis.stop();
});

describe("Envoy's HTTP authorization service", () => {
  it("allows the original GET and tells Envoy to drop authorization upstream", async () => {
    const { token, record } = await issue("prod/reports-read");
    const res = await send(fixture("envoy-http-get.json", token));
    assertAllowed(res, record.id);
    assert.deepEqual(res.headers["x-envoy-auth-headers-to-remove"], [
      "authorization, x-tokenscope-dry-run-deny",
    ]);
  });

  it("denies an original path that climbs out with encoded dots", async () => {
    const { token } = await issue("prod/reports-read");
    assertDenied(await send(fixture("envoy-http-traversal.json", token)), 403, "route_not_allowed");
  });

  it("takes the namespace from the path prefix only", async () => {
    const { token } = await issue("prod/reports-read");
    const f = fixture("envoy-http-get.json", token);
    const staging = { ...f, path: f.path.replace("/ns/prod/", "/ns/staging/") };
    assertDenied(await send(staging), 403, "namespace_mismatch");
  });
});

describe("Traefik forwardAuth", () => {
  it("allows the original GET from X-Forwarded-*", async () => {
    const { token, record } = await issue("prod/reports-read");
    const res = await send(fixture("traefik-get.json", token));
    assertAllowed(res, record.id);
    assert.equal(res.headers["x-envoy-auth-headers-to-remove"], undefined);
  });

  it("denies the original POST even though the authorization request is a GET", async () => {
    const { token } = await issue("prod/reports-read");
    assertDenied(await send(fixture("traefik-post.json", token)), 403, "route_not_allowed");
  });

  it("ignores another proxy's headers and the client's own x-tokenscope-*", async () => {
    const { token } = await issue("prod/reports-read");
    const f = fixture("traefik-other-dialect-headers.json", token);
    assertDenied(await send(f), 403, "route_not_allowed");
  });

  it("denies a missing token 401 with a challenge", async () => {
    const f = fixture("traefik-get.json", "");
    const res = await send({ ...f, headers: f.headers.filter(([k]) => k !== "authorization") });
    assertDenied(res, 401, "missing_token");
    assert.deepEqual(res.headers["www-authenticate"], ['Bearer realm="tokenscope"']);
  });
});

describe("the source address behind a trusted proxy", () => {
  const office = async (xff: string[]) => {
    const { token } = await backends.tokens.issue({
      scope: "prod/office-only",
      owner: "bob",
      labels: {},
      createdBy: "test",
    });
    const f = fixture("traefik-get.json", token);
    const headers = f.headers.filter(([k]) => k !== "x-forwarded-for");
    for (const v of xff) headers.push(["x-forwarded-for", v]);
    return send({ ...f, headers });
  };

  it("is the right-most forwarded address the proxy did not vouch for", async () => {
    assert.equal((await office(["192.0.2.7"])).status, 200);
    assert.equal((await office(["198.51.100.1, 192.0.2.7"])).status, 200);
    assertDenied(await office(["192.0.2.7, 198.51.100.1"]), 403, "source_not_allowed");
    assertDenied(await office(["192.0.2.7", "198.51.100.1"]), 403, "source_not_allowed");
  });

  it("is unknown, and so not allowed, when the forwarded chain is garbage", async () => {
    assertDenied(await office(["192.0.2.7, not-an-address"]), 403, "source_not_allowed");
  });
});

describe("what a client may try through a proxy", () => {
  const unknownPaths = [
    "/",
    "/authz/ns/prod",
    "/nginx/ns/Prod",
    "/nginx/ns/%70rod",
    "/nginx/ns/prod/extra",
    "/envoy/ns/prod",
    "/envoy/ns/prod..%2f",
    "/nginx/ns/../../traefik/ns/prod",
    "/metrics",
  ];
  for (const path of unknownPaths) {
    it(`${path} is 404 with a deny body, never an allow`, async () => {
      const { token } = await issue("prod/reports-read");
      const res = await rawRequest(port, {
        path,
        headers: [
          ["host", "tokenscope"],
          ["authorization", `Bearer ${token}`],
        ],
      });
      assertDenied(res, 404, "unknown_namespace");
    });
  }

  it("two authorization headers are malformed_token, not a choice", async () => {
    const { token } = await issue("prod/reports-read");
    const f = fixture("traefik-get.json", token);
    const res = await send({ ...f, headers: [...f.headers, ["authorization", "Bearer other"]] });
    assertDenied(res, 401, "malformed_token");
  });

  it("two X-Forwarded-Uri headers match no rule", async () => {
    const { token } = await issue("prod/reports-read");
    const f = fixture("traefik-get.json", token);
    const res = await send({ ...f, headers: [...f.headers, ["x-forwarded-uri", "/v1/reports/1"]] });
    assertDenied(res, 403, "route_not_allowed");
  });

  it("a client's x-tokenscope-* headers are never echoed", async () => {
    const f = fixture("traefik-get.json", "");
    const headers = f.headers.filter(([k]) => k !== "authorization");
    headers.push(["x-tokenscope-token-id", "forged"], ["x-tokenscope-reason", "ok"]);
    const res = await send({ ...f, headers });
    assertDenied(res, 401, "missing_token");
  });

  it("an oversize header block is refused (431), never decided", async () => {
    const { token } = await issue("prod/reports-read");
    const f = fixture("traefik-get.json", token);
    const res = await send({ ...f, headers: [...f.headers, ["x-padding", "a".repeat(70_000)]] });
    assert.equal(res.status, 431);
  });

  it("a large body is not read, and the server keeps answering", async () => {
    const { token, record } = await issue("prod/reports-read");
    const f = fixture("envoy-http-get.json", token);
    const headers = f.headers.filter(([k]) => k !== "content-length");
    await rawRequest(port, { ...f, headers, body: "x".repeat(1_000_000) }).catch(() => undefined);
    assertAllowed(await send(fixture("envoy-http-get.json", token)), record.id);
  });
});
