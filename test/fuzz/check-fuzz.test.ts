// Hostile input against the real server over Envoy's wire: random and malformed CheckRequests
// (missing attributes, 64 KiB headers, non-UTF-8 bytes, 4 MiB messages, duplicated and
// odd-cased headers, absurd paths, corrupt and random bytes) and a million random token strings.
// Seeded and reproducible: FUZZ_SEED=<seed> replays a run, FUZZ_SCALE=<n> multiplies its size.
// The property: nothing crashes, every answer is an explicit deny with a known reason, 0 allows.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { createCheckService } from "../../src/check/check-service.ts";
import { DENY_REASONS } from "../../src/domain/reasons.ts";
import { checkMethod } from "../../src/envoy/protos.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import type { CheckResponse } from "../harness/check-client.ts";
import { headerMap } from "../harness/check-client.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";
import {
  corrupt,
  hostileAuthorization,
  hostileCheckRequest,
  hostileToken,
  int,
  randomBytes,
  seededRng,
} from "./generators.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const WIRE_CASES = Math.round(100_000 * SCALE);
const TOKEN_STRINGS = Math.round(1_000_000 * SCALE);
const CONCURRENCY = 64;
const ENV = "prod";
const CHECK = checkMethod();
const KNOWN_REASONS = new Set<string>(DENY_REASONS);
/** What a token that is not a valid credential can ever be denied with. */
const CREDENTIAL_REASONS = new Set([
  "missing_token",
  "malformed_token",
  "environment_mismatch",
  "unknown_token",
]);

let server: TestServer;
let backends: Awaited<ReturnType<typeof openServerBackends>>;
let client: grpc.Client;
const realTokens: string[] = [];
const crashes: unknown[] = [];
const onCrash = (err: unknown) => crashes.push(err);

/** Sends raw bytes as the Check message: the stand-in for a broken or hostile Envoy. */
function sendRaw(bytes: Buffer): Promise<CheckResponse> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      CHECK.path,
      (b: Buffer) => b,
      (b: Buffer) => CHECK.responseDeserialize(b) as CheckResponse,
      bytes,
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
      (err, res) => (err || !res ? reject(err ?? new Error("no response")) : resolve(res)),
    );
  });
}

/** Every answer: an explicit deny whose reason, status and body agree. Returns the reason. */
function assertExplicitDeny(res: CheckResponse, what: string): string {
  assert.notEqual(res.status?.code ?? 0, 0, `${what}: status must be set and not OK`);
  assert.equal(res.ok_response, undefined, `${what}: no ok_response`);
  const headers = headerMap(res.denied_response?.headers);
  const reason = headers["x-tokenscope-reason"] ?? "";
  assert.ok(KNOWN_REASONS.has(reason), `${what}: unknown reason "${reason}"`);
  assert.equal(res.status?.message, reason, `${what}: status message is the reason`);
  assert.ok(res.denied_response?.status?.code, `${what}: denied_response has an HTTP status`);
  assert.equal(
    (JSON.parse(res.denied_response.body ?? "{}") as { reason?: string }).reason,
    reason,
  );
  return reason;
}

async function pool<T>(count: number, worker: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await worker(next++);
    }),
  );
}

function tally(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

before(async () => {
  process.on("unhandledRejection", onCrash);
  process.on("uncaughtException", onCrash);
  console.log(`# fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}), scale ${SCALE}`);
  server = await startTestServer({ environment: ENV });
  backends = await openServerBackends(server);
  for (const [scope, owner] of [
    ["prod/reports-read", "alice"],
    ["prod/ci-deploy", "carol"],
    ["prod/reports-canary", "dave"],
  ] as const) {
    realTokens.push(
      (await backends.tokens.issue({ scope, owner, labels: {}, createdBy: "fuzz" })).token,
    );
  }
  client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": 8 * 1024 * 1024,
  });
});

after(async () => {
  client.close();
  await backends.close();
  await server.stop();
  process.off("unhandledRejection", onCrash);
  process.off("uncaughtException", onCrash);
});

describe("hostile CheckRequests over gRPC", () => {
  it(`${WIRE_CASES} random, malformed, corrupt and random-byte requests are all explicit denies`, async () => {
    const reasons = new Map<string, number>();
    const kinds = new Map<string, number>();
    await pool(WIRE_CASES, async (i) => {
      // One generator per case, so a failing case replays alone whatever the interleaving.
      const rng = seededRng(SEED + i);
      const kind = int(rng, 10);
      let bytes: Buffer;
      let label: string;
      const message = hostileCheckRequest(rng, ENV, realTokens);
      if (kind < 7) {
        label = "structured";
        bytes = CHECK.requestSerialize(message);
      } else if (kind < 9) {
        label = "corrupt";
        bytes = corrupt(rng, CHECK.requestSerialize(message));
      } else {
        label = "random-bytes";
        bytes = randomBytes(rng, int(rng, 2048));
      }
      tally(kinds, label);
      const reason = assertExplicitDeny(await sendRaw(bytes), `case ${i} (${label}, seed ${SEED})`);
      tally(reasons, reason);
    });
    console.log(`# request kinds: ${JSON.stringify(Object.fromEntries(kinds))}`);
    console.log(`# deny reasons: ${JSON.stringify(Object.fromEntries(reasons))}`);
    assert.equal(crashes.length, 0, `unhandled errors: ${crashes.map(String).join("; ")}`);
  });

  it("a 4 MiB request within the limit is denied; one above it is refused by the transport", async () => {
    const header = "x".repeat(64 * 1024);
    const headers: Record<string, string> = { authorization: "Bearer nope" };
    for (let i = 0; i < 62; i++) headers[`x-big-${i}`] = header;
    const within = CHECK.requestSerialize({ attributes: { request: { http: { headers } } } });
    assert.ok(
      within.length > 4_000_000 && within.length < 4 * 1024 * 1024,
      `${within.length} bytes`,
    );
    assert.equal(assertExplicitDeny(await sendRaw(within), "4 MiB"), "malformed_token");
    for (let i = 62; i < 70; i++) headers[`x-big-${i}`] = header;
    const above = CHECK.requestSerialize({ attributes: { request: { http: { headers } } } });
    await assert.rejects(sendRaw(above), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
      return true;
    });
  });

  it("the server still allows a real token afterwards (the fuzz could have failed)", async () => {
    const res = await sendRaw(
      CHECK.requestSerialize({
        attributes: {
          request: {
            http: {
              method: "GET",
              path: "/v1/reports",
              host: "reports.prod.svc.cluster.local",
              headers: { authorization: `Bearer ${realTokens[0] ?? ""}` },
            },
          },
          context_extensions: { namespace: "prod" },
          source: { address: { socket_address: { address: "10.1.1.1" } } },
        },
      }),
    );
    assert.equal(res.status?.code, 0);
    assert.equal(headerMap(res.ok_response?.headers)["x-tokenscope-scope"], "prod/reports-read");
  });
});

describe("random token strings through the check service", () => {
  it(`${TOKEN_STRINGS} token strings that are not credentials never get past unknown_token`, async () => {
    const rng = seededRng(SEED ^ 0x5eed);
    const metrics = createMetrics();
    let auditLines = 0;
    const check = createCheckService({
      environment: ENV,
      serverNamespace: undefined,
      hmacKey: backends.hmacKey,
      store: backends.store,
      scopes: backends.scopes,
      metrics,
      logger: createLogger({
        level: "error",
        write: () => {
          auditLines++;
        },
      }),
      clock: Date.now,
      auditAllowSample: 1,
    });
    const reasons = new Map<string, number>();
    for (let i = 0; i < TOKEN_STRINGS; i++) {
      const token = hostileToken(rng, ENV, realTokens);
      assert.ok(!realTokens.includes(token), "the generator never yields a real token");
      const { decision } = await check({
        authorization: hostileAuthorization(rng, token),
        route: { method: "GET", path: "/v1/reports", host: "reports.prod.svc.cluster.local" },
        source: { address: "10.1.1.1" },
        namespaceSources: { contextExtensionNamespace: "prod" },
        requestId: undefined,
      });
      if (decision.allowed || !CREDENTIAL_REASONS.has(decision.reason)) {
        assert.fail(
          `token case ${i} (seed ${SEED}): ${decision.reason} for ${JSON.stringify(token)}`,
        );
      }
      tally(reasons, decision.reason);
    }
    console.log(`# token reasons: ${JSON.stringify(Object.fromEntries(reasons))}`);
    assert.equal(auditLines, TOKEN_STRINGS, "every deny is audited");
    for (const r of ["missing_token", "malformed_token", "environment_mismatch", "unknown_token"]) {
      assert.ok((reasons.get(r) ?? 0) > 0, `the generator reaches ${r}`);
    }
    assert.equal(crashes.length, 0);
  });
});
