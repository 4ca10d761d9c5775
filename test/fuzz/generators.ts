// Seeded, reproducible generators of hostile input: token strings and CheckRequests. A run
// prints its seed; FUZZ_SEED=<seed> replays it exactly.
import { crc32 } from "node:zlib";

export type Rng = () => number;

/** mulberry32: small, fast, and the same sequence on every platform for a given seed. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)] as T;
export const chance = (rng: Rng, p: number): boolean => rng() < p;

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ALPHABETS = [
  BASE62,
  BASE62 + "_-.~+/=",
  " \t\r\n\0\x7f\\\"'%;,:",
  "аβ中🙂\u200b\u202e\ufeff",
];

export function randomString(rng: Rng, length: number, alphabet?: string): string {
  const chars = Array.from(alphabet ?? pick(rng, ALPHABETS));
  let out = "";
  for (let i = 0; i < length; i++) out += pick(rng, chars);
  return out;
}

/** base62 of a CRC-32, 6 digits: computed here, independently of src/domain/token.ts. */
export function check6(payload: string): string {
  let n = crc32(payload);
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = BASE62.charAt(n % 62) + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export function wellFormedToken(env: string, id: string, secret: string): string {
  const payload = `tks_${env}_${id}${secret}`;
  return payload + check6(payload);
}

/**
 * A token string that is never a valid credential for `known` (real tokens in the store):
 * random junk, near-misses of the format, single edits of real tokens, real ids with a forged
 * secret and a correct checksum, tokens of other environments, and well-formed unknown ids.
 */
export function hostileToken(rng: Rng, env: string, known: readonly string[]): string {
  const real =
    known.length > 0 ? pick(rng, known) : wellFormedToken(env, "A".repeat(12), "B".repeat(32));
  switch (int(rng, 9)) {
    case 0:
      return randomString(rng, int(rng, 120));
    case 1:
      return `tks_${randomString(rng, int(rng, 14), "abcxyz09_")}_${randomString(rng, int(rng, 60), BASE62)}`;
    case 2: {
      // One substitution: CRC-32 detects every single-character change.
      const i = int(rng, real.length);
      let c = BASE62.charAt(int(rng, 62));
      if (c === real[i]) c = c === "a" ? "b" : "a";
      return real.slice(0, i) + c + real.slice(i + 1);
    }
    case 3: {
      const cut = int(rng, real.length);
      return chance(rng, 0.5)
        ? real.slice(0, cut)
        : real + randomString(rng, 1 + int(rng, 4), BASE62);
    }
    case 4: {
      const i = int(rng, real.length - 1);
      if (real[i] === real[i + 1]) return real.toUpperCase() + "x";
      return real.slice(0, i) + real.charAt(i + 1) + real.charAt(i) + real.slice(i + 2);
    }
    case 5: {
      // The real id, a forged secret, a valid checksum: only the HMAC can tell.
      const id = real.slice(real.lastIndexOf("_") + 1, real.lastIndexOf("_") + 13);
      return wellFormedToken(env, id, randomString(rng, 32, BASE62));
    }
    case 6: {
      const others = ["staging", "dev", "prod2", "x"].filter((e) => e !== env);
      return wellFormedToken(
        pick(rng, others),
        randomString(rng, 12, BASE62),
        randomString(rng, 32, BASE62),
      );
    }
    case 7:
      return wellFormedToken(env, randomString(rng, 12, BASE62), randomString(rng, 32, BASE62));
    default:
      return real.replace("tks_", pick(rng, ["TKS_", "tks-", "tks__", "tks_ ", "tks_\u0000"]));
  }
}

/** An authorization header (or several) around a hostile token. */
export function hostileAuthorization(rng: Rng, token: string): string[] {
  switch (int(rng, 8)) {
    case 0:
      return [];
    case 1:
      return [`Basic ${Buffer.from(`u:${token}`).toString("base64")}`];
    case 2:
      return [`Bearer ${token}`, `Bearer ${token}`];
    case 3:
      return [`${pick(rng, ["bearer", "BEARER", "Bearer\t", "Bearer  "])} ${token}`];
    case 4:
      return [`Bearer ${token},Bearer ${token}`];
    case 5:
      return [pick(rng, ["Bearer", "Bearer ", "", token])];
    default:
      return [`Bearer ${token}`];
  }
}

const PATHS = [
  "/",
  "/v1/reports",
  "/v1/reports/../../admin",
  "/v1/%2e%2e/%2F",
  "//v1",
  "/v1/reports?x=%zz#frag",
  "*",
  "",
  "/v1/%C3%28",
  "/v1/\u0000\r\nX-Evil: 1",
];

export function absurdPath(rng: Rng): string {
  switch (int(rng, 5)) {
    case 0:
      return pick(rng, PATHS);
    case 1:
      return "/" + randomString(rng, int(rng, 300));
    case 2:
      return "/" + "a/".repeat(1 + int(rng, 5000));
    case 3:
      return "/" + "%".repeat(int(rng, 50)) + randomString(rng, 20, "0123456789abcdefXYZ%/.");
    default:
      return "/v1/reports/" + randomString(rng, int(rng, 40), BASE62 + "/.%");
  }
}

const HEADER_NAMES = [
  "authorization",
  "Authorization",
  "AUTHORIZATION",
  ":authority",
  ":path",
  ":method",
  "host",
  "x-tokenscope-token-id",
  "x-tokenscope-scope",
  "x-forwarded-for",
  "x-request-id",
  "cookie",
  "",
];

/** Bytes that are not UTF-8, as Envoy forwards them in header_map raw_value. */
export function nonUtf8(rng: Rng, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++)
    out[i] = pick(rng, [0xc3, 0x28, 0xff, 0xfe, 0x80, 0xe2, 0x00, 0x41]);
  return out;
}

function headerValue(rng: Rng, token: string): string {
  switch (int(rng, 4)) {
    case 0:
      return "x".repeat(64 * 1024);
    case 1:
      return randomString(rng, int(rng, 200));
    default:
      return `Bearer ${token}`;
  }
}

/**
 * A CheckRequest object with random omissions, odd-cased and duplicated headers, huge and
 * non-UTF-8 values, absurd paths and namespaces. Every field has its proto type, so it encodes.
 */
export function hostileCheckRequest(rng: Rng, env: string, known: readonly string[]): object {
  const token = hostileToken(rng, env, known);
  const auth = hostileAuthorization(rng, token);
  const path = absurdPath(rng);
  const method = pick(rng, ["GET", "get", "POST", "", "G E T", "\u0000", randomString(rng, 40)]);
  const host = pick(rng, [
    "reports.prod.svc.cluster.local",
    "REPORTS.PROD.SVC.CLUSTER.LOCAL:443",
    "[::1]:80",
    "",
    randomString(rng, int(rng, 300)),
  ]);
  const http: Record<string, unknown> = { id: randomString(rng, int(rng, 40)), method, path, host };
  if (chance(rng, 0.5)) {
    const headers: Record<string, string> = {};
    auth.forEach((v, i) => (headers[i === 0 ? "authorization" : pick(rng, HEADER_NAMES)] = v));
    for (let i = int(rng, 6); i > 0; i--)
      headers[pick(rng, HEADER_NAMES)] = headerValue(rng, token);
    http.headers = headers;
  } else {
    const list: { key: string; value?: string; raw_value?: Buffer }[] = auth.map((v) => ({
      key: pick(rng, ["authorization", "Authorization", "AUTHORIZATION"]),
      raw_value: chance(rng, 0.8) ? Buffer.from(v, "latin1") : nonUtf8(rng, 80),
    }));
    for (let i = int(rng, 6); i > 0; i--) {
      list.push({ key: pick(rng, HEADER_NAMES), raw_value: Buffer.from(headerValue(rng, token)) });
    }
    http.header_map = { headers: list };
  }
  const attributes: Record<string, unknown> = {};
  if (chance(rng, 0.9)) attributes.request = chance(rng, 0.95) ? { http } : {};
  if (chance(rng, 0.7)) {
    attributes.source = {
      address: {
        socket_address: {
          address: pick(rng, [
            "10.20.1.1",
            "::1",
            "fd00:20::1",
            "not-an-ip",
            "",
            randomString(rng, 30),
          ]),
        },
      },
      principal: pick(rng, ["", "spiffe://cluster.local/ns/ci/sa/deployer", randomString(rng, 60)]),
    };
  }
  if (chance(rng, 0.5)) {
    attributes.destination = {
      principal: pick(rng, [
        "spiffe://cluster.local/ns/prod/sa/api",
        "spiffe://cluster.local/ns/PROD/sa/api",
        "spiffe://x/ns//sa/",
        randomString(rng, 60),
      ]),
    };
  }
  if (chance(rng, 0.6)) {
    attributes.context_extensions = {
      namespace: pick(rng, [
        "prod",
        "staging",
        "",
        "Prod",
        "../prod",
        "prod\u0000",
        randomString(rng, 70),
      ]),
    };
  }
  return chance(rng, 0.97) ? { attributes } : {};
}

/** Corrupts an encoded message: flipped bytes, truncation or random garbage appended. */
export function corrupt(rng: Rng, bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  switch (int(rng, 3)) {
    case 0:
      for (let i = 1 + int(rng, 8); i > 0 && out.length > 0; i--)
        out[int(rng, out.length)] = int(rng, 256);
      return out;
    case 1:
      return out.subarray(0, int(rng, out.length));
    default:
      return Buffer.concat([out, Buffer.from(randomString(rng, 1 + int(rng, 64)), "latin1")]);
  }
}

export function randomBytes(rng: Rng, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = int(rng, 256);
  return out;
}
