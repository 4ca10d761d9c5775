// The benchmark's data: 100 TokenScopes, N token records seeded straight into Redis in the Redis
// store's own format (the same JSON and keys src/store/redis-store.ts reads), and the traffic
// mix as gRPC-framed CheckRequests encoded with Envoy's official protos.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatToken, hashSecret, sealRecord, type ParsedToken } from "../../src/domain/token.ts";
import { randomBase62 } from "../../src/domain/base62.ts";
import type { TokenRecord } from "../../src/domain/token-record.ts";
import { buildCheckRequest, type CheckRequestParams } from "../../src/envoy/check-request.ts";
import { authorizationService } from "../../src/envoy/protos.ts";
import { encodeRecord } from "../../src/store/record-json.ts";
import { withBrokenChecksum } from "../harness/fixtures.ts";

export const ENVIRONMENT = "bench";
export const NAMESPACE = "bench";
export const PREFIX = "{tokenscope}:";
export const SCOPES = 100;
const HOUR = 3_600_000;

export const scopeName = (i: number): string => `api-${String(i % SCOPES).padStart(2, "0")}`;
export const hostOf = (i: number): string => `${scopeName(i)}.bench.svc.cluster.local`;

/** `serve` flags for the bench's Redis, key, environment and scopes (every bench script's own). */
export function serveArgsFor(redisUrl: string, keyFile: string, scopes: string): string[] {
  return [
    `--redis-url=${redisUrl}`,
    `--redis-prefix=${PREFIX}`,
    `--hmac-key-file=${keyFile}`,
    `--environment=${ENVIRONMENT}`,
    `--scopes=${scopes}`,
  ];
}

/** One YAML file with the 100 scopes: GET/HEAD under /v1/ on each scope's own host. */
export function writeScopes(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const docs: string[] = [];
  for (let i = 0; i < SCOPES; i++) {
    docs.push(`apiVersion: tokenscope.dev/v1alpha1
kind: TokenScope
metadata: {name: ${scopeName(i)}, namespace: ${NAMESPACE}}
spec:
  owner: team-${i % 10}
  rules:
    - hosts: ["${hostOf(i)}"]
      paths: ["/v1/*"]
      methods: ["GET", "HEAD"]`);
  }
  const file = join(dir, "scopes.yaml");
  writeFileSync(file, docs.join("\n---\n") + "\n");
  return file;
}

/** Token i, derived from i so the bench can rebuild any token without keeping a million. */
export function benchToken(i: number): ParsedToken {
  const id = `B${i.toString(36).padStart(11, "0")}`.slice(0, 12);
  // Deterministic per run seed + i; secrets need no randomness in a benchmark.
  const secret = `S${i.toString(36).padStart(31, "x")}`.slice(0, 32);
  return { environment: ENVIRONMENT, id, secret };
}

export function tokenString(t: ParsedToken): string {
  return formatToken(t.environment, t.id, t.secret);
}

/**
 * Bench token i's record before it is sealed, with the keyed hash of its secret: cache-ab.ts seals
 * it with each checkout's own sealRecord.
 */
export function benchRecordFields(
  i: number,
  now: number,
  revoked: boolean,
  hash: string,
): Omit<TokenRecord, "seal"> {
  return {
    id: benchToken(i).id,
    hash,
    scope: `${NAMESPACE}/${scopeName(i)}`,
    owner: `team-${i % 10}`,
    environment: ENVIRONMENT,
    labels: { tenant: `t${i % 1000}` },
    description: "bench token",
    createdAt: now - HOUR,
    createdBy: "bench",
    notBefore: now - HOUR,
    expiresAt: now + 24 * HOUR,
    ...(revoked ? { revokedAt: now - 60_000 } : {}),
  };
}

function recordOf(key: Uint8Array, i: number, now: number, revoked: boolean): TokenRecord {
  return sealRecord(key, benchRecordFields(i, now, revoked, hashSecret(key, benchToken(i))));
}

function resp(args: string[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

/** Ids [0, count) are active; `revokedFrom`.. `count` are revoked. Uses `redis-cli --pipe`. */
export async function seedTokens(opts: {
  port: number;
  key: Uint8Array;
  count: number;
  revokedFrom: number;
}): Promise<void> {
  const now = Date.now();
  const cli = spawn("redis-cli", ["-p", String(opts.port), "--pipe"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let report = "";
  cli.stdout.on("data", (c: Buffer) => (report += c.toString()));
  const setKey = `${PREFIX}tokens`;
  const BATCH = 1000;
  for (let start = 0; start < opts.count; start += BATCH) {
    let chunk = "";
    const ids: string[] = [];
    for (let i = start; i < Math.min(opts.count, start + BATCH); i++) {
      const record = recordOf(opts.key, i, now, i >= opts.revokedFrom);
      const keepUntil = record.expiresAt + 720 * HOUR;
      chunk += resp([
        "SET",
        `${PREFIX}token:${record.id}`,
        encodeRecord(record),
        "PXAT",
        String(keepUntil),
      ]);
      ids.push(record.id);
    }
    chunk += resp(["SADD", setKey, ...ids]);
    if (!cli.stdin.write(chunk)) await once(cli.stdin, "drain");
  }
  cli.stdin.end();
  const [code] = (await once(cli, "exit")) as [number | null];
  if (code !== 0 || !/errors: 0,/.test(report)) throw new Error(`seeding failed: ${report}`);
}

/**
 * A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, bytes. The
 * request time and source port are pinned so that every body of the mix has the same length.
 */
export function grpcFrame(request: Record<string, unknown>): Buffer {
  const attributes = request.attributes as Record<string, Record<string, unknown>>;
  const source = attributes.source as { address: { socket_address: { port_value: number } } };
  source.address.socket_address.port_value = 40000;
  (attributes.request as Record<string, unknown>).time = {
    seconds: "1800000000",
    nanos: 500000000,
  };
  const serialize = authorizationService().Check?.requestSerialize;
  if (!serialize) throw new Error("Check has no serializer");
  const message = serialize(request);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

export function allowedRequest(i: number): Record<string, unknown> {
  return buildCheckRequest(routeFor(i, tokenString(benchToken(i))));
}

function routeFor(i: number, token: string): CheckRequestParams {
  return {
    method: "GET",
    // Fixed width, so every body of the mix has the same length (see rotator.ts).
    path: `/v1/items/${String(i).padStart(7, "0")}`,
    host: hostOf(i),
    namespace: NAMESPACE,
    token,
    sourceIp: "10.20.1.7",
  };
}

export const DENY_REASONS = [
  "unknown_token",
  "revoked",
  "route_not_allowed",
  "namespace_mismatch",
  "malformed_token",
] as const;
export type DenyReason = (typeof DENY_REASONS)[number];

/** A request the server must deny with `reason`; `revoked` names a seeded revoked token. */
export function deniedRequest(reason: DenyReason, revoked: number): Record<string, unknown> {
  const good = tokenString(benchToken(7));
  switch (reason) {
    case "unknown_token": {
      const id = randomBase62(12, randomBytes);
      return buildCheckRequest(
        routeFor(7, tokenString({ environment: ENVIRONMENT, id, secret: "U".repeat(32) })),
      );
    }
    case "revoked":
      return buildCheckRequest(routeFor(revoked, tokenString(benchToken(revoked))));
    case "route_not_allowed":
      // PUT, not DELETE: same length as GET (see grpcFrame).
      return buildCheckRequest({ ...routeFor(7, good), method: "PUT" });
    case "namespace_mismatch":
      return buildCheckRequest({ ...routeFor(7, good), namespace: "other" });
    case "malformed_token":
      return buildCheckRequest(routeFor(7, withBrokenChecksum(good)));
  }
}

/**
 * The traffic mix as a sequence of bodies: 9 allowed (distinct tokens, cycling through
 * `distinct`), then 1 denied, its reason taking turns. All of one length (see rotator.ts).
 */
export function mixBodies(distinct: number, revokedFrom: number): Buffer[] {
  const denied: Buffer[] = [];
  for (let k = 0; k < 50; k++) {
    const reason = DENY_REASONS[k % DENY_REASONS.length] ?? "unknown_token";
    denied.push(grpcFrame(deniedRequest(reason, revokedFrom + (k % 10))));
  }
  const seq: Buffer[] = [];
  for (let a = 0, d = 0; a < distinct;) {
    for (let j = 0; j < 9 && a < distinct; j++) seq.push(grpcFrame(allowedRequest(a++)));
    seq.push(denied[d++ % denied.length] as Buffer);
  }
  return seq;
}
