// Hostile requests against the HTTP authorization server: random endpoints and paths, broken
// and doubled authorization headers, doubled or absurd original-request headers, forged
// x-tokenscope-* headers, header bytes that break HTTP framing. Seeded (FUZZ_SEED, FUZZ_SCALE).
// The property: nothing crashes; an allow only ever names a real token, for a GET/HEAD under
// /v1/reports (the only thing its scope allows); every other answer is an explicit deny or a
// protocol refusal; nothing the client sent comes back.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DENY_REASONS } from "../../src/domain/reasons.ts";
import { rawRequest, type RawResponse } from "../harness/raw-http.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";
import {
  absurdPath,
  chance,
  hostileAuthorization,
  hostileToken,
  int,
  pick,
  randomString,
  seededRng,
  type Rng,
} from "./generators.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const CASES = Math.round(5000 * SCALE);
const CONCURRENCY = 32;
const ENV = "prod";
const KNOWN_REASONS = new Set<string>([...DENY_REASONS]);
const METHODS = ["GET", "HEAD", "POST", "get", "DELETE", "", "G\u0000T", "PUT PUT"];
const HOSTS = ["reports.prod.svc.cluster.local", "a.reports.example.com", "evil.example.com", ""];

let server: TestServer;
let port: number;
const tokens: { token: string; id: string }[] = [];
const crashes: unknown[] = [];
const onCrash = (err: unknown) => crashes.push(err);

interface Case {
  readonly path: string;
  readonly headers: [string, string][];
  readonly method: string;
  /** The original request as the endpoint should read it, when it is unambiguous. */
  readonly original?: { method: string; path: string };
}

function endpoint(rng: Rng): {
  path: string;
  dialect?: "envoy" | "nginx" | "traefik";
  tail?: string;
} {
  switch (int(rng, 6)) {
    case 0:
      return { path: "/nginx/ns/prod", dialect: "nginx" };
    case 1:
      return { path: "/traefik/ns/prod", dialect: "traefik" };
    case 2: {
      const tail = pick(rng, ["/v1/reports/2026", "/v1/reports", absurdPath(rng)]);
      return { path: `/envoy/ns/prod${tail}`, dialect: "envoy", tail };
    }
    case 3:
      return {
        path: `/${pick(rng, ["nginx", "traefik", "envoy"])}/ns/${randomString(rng, int(rng, 70))}`,
      };
    default:
      return { path: absurdPath(rng) };
  }
}

function hostileCase(rng: Rng): Case {
  const target = endpoint(rng);
  const headers: [string, string][] = [["host", pick(rng, HOSTS)]];
  const token = chance(rng, 0.5)
    ? pick(rng, tokens).token
    : hostileToken(
        rng,
        ENV,
        tokens.map((t) => t.token),
      );
  for (const value of chance(rng, 0.3) ? hostileAuthorization(rng, token) : [`Bearer ${token}`]) {
    headers.push(["authorization", value]);
  }
  const method = pick(rng, METHODS.slice(0, 5));
  const uri = pick(rng, ["/v1/reports/2026", "/v1/reports", absurdPath(rng)]);
  const originalMethod = pick(rng, METHODS);
  const names =
    target.dialect === "traefik"
      ? ["x-forwarded-method", "x-forwarded-uri", "x-forwarded-host"]
      : ["x-original-method", "x-original-uri", "x-original-host"];
  headers.push(
    [names[0] ?? "", originalMethod],
    [names[1] ?? "", uri],
    [names[2] ?? "", pick(rng, HOSTS)],
  );
  if (chance(rng, 0.1)) headers.push([pick(rng, names), pick(rng, ["/v1/reports/1", "GET", "x"])]);
  if (chance(rng, 0.3))
    headers.push(["x-tokenscope-token-id", "forged"], ["x-tokenscope-reason", "ok"]);
  if (chance(rng, 0.3))
    headers.push(["x-forwarded-for", pick(rng, ["192.0.2.1", "garbage", "::1, 10.0.0.1"])]);
  if (chance(rng, 0.05)) headers.push(["x-padding", "p".repeat(int(rng, 80_000))]);
  if (chance(rng, 0.05)) headers.push(["x-evil", `a\r\nx-tokenscope-token-id: smuggled`]);
  const original =
    target.dialect === "envoy"
      ? { method, path: target.tail ?? "" }
      : target.dialect
        ? { method: originalMethod, path: uri }
        : undefined;
  return { path: target.path, headers, method, original };
}

function assertAnswer(c: Case, res: RawResponse, what: string): string {
  const all = JSON.stringify(res.headers);
  assert.ok(
    !all.includes("forged") && !all.includes("smuggled"),
    `${what}: echoed a client header`,
  );
  if (res.status === 400 || res.status === 431) return `http_${res.status}`;
  if (res.status === 200) {
    const id = res.headers["x-tokenscope-token-id"]?.[0] ?? "";
    const sent = c.headers.filter(([k]) => k === "authorization").map(([, v]) => v);
    const real = tokens.find((t) => t.id === id);
    assert.ok(real, `${what}: an allow names a real token`);
    // RFC 7235: the scheme is case-insensitive, separated by spaces or tabs.
    const bearer = new RegExp(`^bearer[ \t]+${real.token}[ \t]*$`, "i");
    assert.equal(sent.length, 1, `${what}: allowed only with one authorization header`);
    assert.match(sent[0] ?? "", bearer, `${what}: allowed only on its exact token`);
    assert.ok(c.original, `${what}: allowed only on an authorization endpoint`);
    assert.ok(["GET", "HEAD"].includes(c.original.method.toUpperCase()), `${what}: method`);
    assert.ok(c.original.path.startsWith("/v1/reports"), `${what}: path ${c.original.path}`);
    assert.equal(res.headers["x-tokenscope-reason"], undefined);
    return "allow";
  }
  const reason = res.headers["x-tokenscope-reason"]?.[0] ?? "";
  assert.ok(KNOWN_REASONS.has(reason), `${what}: status ${res.status}, reason "${reason}"`);
  if (c.method !== "HEAD") {
    assert.equal((JSON.parse(res.body) as { reason?: string }).reason, reason, `${what}: body`);
  }
  return reason;
}

before(async () => {
  process.on("unhandledRejection", onCrash);
  process.on("uncaughtException", onCrash);
  console.log(`# http fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}), scale ${SCALE}`);
  server = await startTestServer({
    environment: ENV,
    extraArgs: ["--http-authz-addr=127.0.0.1:0", "--trusted-proxies=127.0.0.1/32"],
  });
  port = server.httpAuthzPort ?? 0;
  const backends = await openServerBackends(server);
  for (let i = 0; i < 3; i++) {
    const issued = await backends.tokens.issue({
      scope: "prod/reports-read",
      owner: "fuzz",
      labels: {},
      createdBy: "fuzz",
    });
    tokens.push({ token: issued.token, id: issued.record.id });
  }
  await backends.close();
});

after(async () => {
  await server.stop();
  process.off("unhandledRejection", onCrash);
  process.off("uncaughtException", onCrash);
});

describe("hostile requests to the HTTP authorization server", () => {
  it(`${CASES} hostile requests: allows only for real tokens on allowed routes`, async () => {
    const outcomes = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CASES) {
          const i = next++;
          const c = hostileCase(seededRng(SEED + i));
          const what = `case ${i} of FUZZ_SEED=${SEED}`;
          const res = await rawRequest(port, c).catch((err: unknown) => err);
          const key =
            res instanceof Error ? "connection_closed" : assertAnswer(c, res as RawResponse, what);
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
      }),
    );
    console.log(
      `# http fuzz outcomes: ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`,
    );
    assert.deepEqual(crashes, []);
    assert.ok((outcomes.get("allow") ?? 0) > 0, "the generator also makes allowed requests");
    const ok = await rawRequest(port, {
      path: "/nginx/ns/prod",
      headers: [
        ["host", "x"],
        ["authorization", `Bearer ${tokens[0]?.token ?? ""}`],
        ["x-original-method", "GET"],
        ["x-original-uri", "/v1/reports/1"],
        ["x-original-host", "reports.prod.svc.cluster.local"],
      ],
    });
    assert.equal(ok.status, 200, "the server still answers");
  });
});
