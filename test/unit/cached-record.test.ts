// What the token cache keeps of a record: decide() must not be able to tell a cached record from
// the record the store returned, and the cache's byte count must be the heap it really takes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { inspect } from "node:util";
import { runInNewContext } from "node:vm";
import { decide, type DecisionInput } from "../../src/domain/decide.ts";
import { compileTokenScope } from "../../src/domain/scope.ts";
import { DEFAULT_MAX_TTL_MS, type ScopeEntry } from "../../src/domain/scope-types.ts";
import {
  hashSecret,
  recordVerified,
  sealRecord,
  VERIFIED_DIGEST,
  type ParsedToken,
} from "../../src/domain/token.ts";
import type { TokenRecord } from "../../src/domain/token-record.ts";
import {
  CachedRecord,
  entryBytes,
  SharedValues,
  stringBytes,
} from "../../src/store/cached-record.ts";
import { createCachedStore, type InvalidationFeed } from "../../src/store/cached-store.ts";
import { decodeRecord, encodeRecord } from "../../src/store/record-json.ts";
import type { TokenStore } from "../../src/store/token-store.ts";

const KEY = Buffer.alloc(32, 7);
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const HOUR = 3_600_000;

const token: ParsedToken = { environment: "prod", id: "Cached0Token", secret: "c".repeat(32) };

function scope(mode: "Enforce" | "DryRun" = "Enforce"): ScopeEntry {
  const entry = compileTokenScope(
    {
      apiVersion: "tokenscope.dev/v1alpha1",
      kind: "TokenScope",
      metadata: { name: "reports-read", namespace: "prod", generation: 1 },
      spec: {
        owner: "team-analytics",
        mode,
        rules: [
          {
            hosts: ["reports.prod.svc.cluster.local"],
            paths: ["/v1/tenants/{token.labels.tenant}/*"],
            methods: ["GET"],
          },
        ],
      },
    },
    { maxTTLCapMs: DEFAULT_MAX_TTL_MS },
  );
  assert.ok(entry.ready, JSON.stringify(entry));
  return entry;
}

function aRecord(overrides: Partial<TokenRecord> = {}): TokenRecord {
  const sealed = sealRecord(KEY, {
    id: token.id,
    hash: hashSecret(KEY, token),
    scope: "prod/reports-read",
    owner: "alice",
    environment: "prod",
    labels: { tenant: "acme" },
    description: "reports for the acme dashboard",
    createdAt: T0,
    createdBy: "alice@example.com",
    notBefore: T0,
    expiresAt: T0 + 24 * HOUR,
    lastUsedAt: T0 + HOUR,
    lastSource: "10.0.0.1",
  });
  return { ...sealed, ...overrides };
}

const cached = (r: TokenRecord) =>
  new CachedRecord(r.id, r, new SharedValues(1 << 20), 0).asRecord();

describe("a cached record decides exactly like the stored one", () => {
  const rows: [string, TokenRecord, Partial<DecisionInput>][] = [
    ["an active token on its tenant's path", aRecord(), {}],
    ["an active token on another tenant's path", aRecord(), { route: route("/v1/tenants/x/a") }],
    ["a DryRun scope's would-deny", aRecord(), { scope: scope("DryRun"), route: route("/v1/x") }],
    ["a revoked token", aRecord({ revokedAt: T0 + HOUR }), {}],
    ["a revocation in the future", aRecord({ revokedAt: T0 + 3 * HOUR }), {}],
    ["a rotated token within grace", aRecord({ replacedBy: "N", graceUntil: T0 + 3 * HOUR }), {}],
    ["a rotated token past grace", aRecord({ replacedBy: "N", graceUntil: T0 + HOUR }), {}],
    ["an expired token", aRecord({ expiresAt: T0 + HOUR }), {}],
    ["a token not yet valid", aRecord({ notBefore: T0 + 3 * HOUR }), {}],
    // Lifetimes kept as offsets from createdAt (milliseconds or seconds) or as they are.
    ["a 90-day token", aRecord({ expiresAt: T0 + 90 * 24 * HOUR }), {}],
    ["a token expiring a millisecond after now", aRecord({ expiresAt: T0 + 2 * HOUR + 1 }), {}],
    ["a token expiring at now", aRecord({ expiresAt: T0 + 2 * HOUR }), {}],
    ["a lifetime of 90 days and 1 ms", aRecord({ expiresAt: T0 + 90 * 24 * HOUR + 1 }), {}],
    ["a token valid from a millisecond after now", aRecord({ notBefore: T0 + 2 * HOUR + 1 }), {}],
    ["a fractional expiry", aRecord({ expiresAt: T0 + 2 * HOUR + 0.5 }), {}],
    ["a revocation at now", aRecord({ revokedAt: T0 + 2 * HOUR }), {}],
    ["labels changed without the key", aRecord({ labels: { tenant: "other" } }), {}],
    ["another scope without the key", aRecord({ scope: "prod/admin" }), {}],
    ["an owner changed without the key", aRecord({ owner: "mallory" }), {}],
    ["a lifetime stretched without the key", aRecord({ expiresAt: T0 + 99 * HOUR }), {}],
    ["a record without a seal", aRecord({ seal: undefined }), {}],
    ["a wrong secret hash", aRecord({ hash: "00".repeat(32) }), {}],
    // The cache keeps the 32 bytes a hex hash or seal decodes to: whatever the store's text was,
    // the cached record must decide as the hex decoder reads that text.
    ["an upper-case hex hash", aRecord({ hash: hashSecret(KEY, token).toUpperCase() }), {}],
    ["a hash with text after its 64 digits", aRecord({ hash: `${hashSecret(KEY, token)}zz` }), {}],
    ["a hash of 31 bytes", aRecord({ hash: hashSecret(KEY, token).slice(0, 62) }), {}],
    ["a seal of 33 bytes", { ...aRecord(), seal: `${aRecord().seal ?? ""}00` }, {}],
    ["a seal that is not hex", { ...aRecord(), seal: "not a seal" }, {}],
    ["a record of another environment", aRecord({ environment: "dev" }), {}],
  ];
  function route(path: string) {
    return { host: "reports.prod.svc.cluster.local", path, method: "GET" };
  }
  for (const [name, record, overrides] of rows) {
    it(name, () => {
      const input = (r: TokenRecord): DecisionInput => ({
        token,
        lookup: { found: true, record: r },
        hmacKey: KEY,
        now: T0 + 2 * HOUR,
        scope: scope(),
        namespace: "prod",
        route: route("/v1/tenants/acme/reports"),
        source: { address: "10.0.0.1" },
        ...overrides,
      });
      const want = decide(input(record));
      assert.deepEqual(decide(input(cached(record))), want);
      // And on a second check of the same object (its memo answers then).
      const again = cached(record);
      decide(input(again));
      assert.deepEqual(decide(input(again)), want);
    });
  }

  it("remembers a secret that passed in the record itself, and only that secret", () => {
    const record = new CachedRecord(token.id, aRecord(), new SharedValues(1 << 20), 0);
    const other: ParsedToken = { ...token, secret: "d".repeat(32) };
    const sameBytes = Buffer.alloc(32, 7);
    assert.equal(record[VERIFIED_DIGEST], "", "nothing remembered before a check");
    assert.equal(recordVerified(KEY, other, record), false, "a wrong secret is not remembered");
    assert.equal(record[VERIFIED_DIGEST], "");
    assert.equal(recordVerified(KEY, token, record), true);
    const digest = record[VERIFIED_DIGEST];
    assert.equal(digest.length, 32);
    assert.equal(recordVerified(KEY, token, record), true, "the remembered secret");
    assert.equal(recordVerified(KEY, other, record), false, "another secret: the keyed hash");
    assert.equal(recordVerified(Buffer.alloc(32, 8), token, record), false, "another key");
    assert.equal(record[VERIFIED_DIGEST], digest, "a failed check leaves the memo alone");
    // Another key object with the same bytes passes the keyed checks, and is remembered apart.
    assert.equal(recordVerified(sameBytes, token, record), true);
    assert.notEqual(record[VERIFIED_DIGEST], digest, "a memo answers for one key object");
    assert.equal(recordVerified(KEY, token, record), true);
    assert.equal(record[VERIFIED_DIGEST], digest);
  });

  it("a copy of a remembered record carries no memo: it is checked in full, and refused", () => {
    const record = new CachedRecord(token.id, aRecord(), new SharedValues(1 << 20), 0);
    assert.ok(recordVerified(KEY, token, record));
    // Copies that lose the class are what this is about.
    const copies = [
      // eslint-disable-next-line @typescript-eslint/no-misused-spread
      { ...record, scope: "kube-system/admin" },
      Object.assign({}, record, { owner: "mallory" }),
      // eslint-disable-next-line @typescript-eslint/no-misused-spread
      { ...record },
    ];
    for (const copy of copies) {
      assert.equal(VERIFIED_DIGEST in copy, false);
      // The copy has no hash (a getter is not copied): the full check refuses it or throws.
      let verified: boolean | "threw";
      try {
        verified = recordVerified(KEY, token, copy as unknown as CachedRecord);
      } catch {
        verified = "threw";
      }
      assert.notEqual(verified, true);
    }
  });

  it("a record whose seal does not hold is never remembered, however often its secret passes", () => {
    const record = new CachedRecord(
      token.id,
      aRecord({ owner: "mallory" }),
      new SharedValues(1 << 20),
      0,
    );
    for (let i = 0; i < 3; i++) assert.equal(recordVerified(KEY, token, record), false);
    assert.equal(record[VERIFIED_DIGEST], "");
  });

  it("shows its hash and seal as the store's hex, and the memo nowhere", () => {
    const stored = aRecord();
    const record = new CachedRecord(token.id, stored, new SharedValues(1 << 20), 0);
    assert.equal(record.hash, stored.hash);
    assert.equal(record.seal, stored.seal);
    assert.ok(recordVerified(KEY, token, record));
    const shown = `${JSON.stringify(record)}${inspect(record, { showHidden: true, depth: 9 })}`;
    for (const hidden of [record[VERIFIED_DIGEST], "verifiedDigest"]) {
      assert.ok(!shown.includes(hidden), hidden);
    }
    assert.ok(shown.includes(token.id));
  });

  it("reads back every field decide() and the seal read, exactly", () => {
    const stored = aRecord({
      expiresAt: T0 + 90 * 24 * HOUR + 1,
      revokedAt: T0 + 0.5,
      replacedBy: "NewId",
      graceUntil: T0 + HOUR,
    });
    const record = cached(stored);
    for (const field of [
      "id",
      "hash",
      "seal",
      "scope",
      "owner",
      "environment",
      "labels",
      "createdAt",
      "notBefore",
      "expiresAt",
      "revokedAt",
      "replacedBy",
      "graceUntil",
    ] as const) {
      assert.deepEqual(record[field], stored[field], field);
    }
  });

  it("keeps no free text and no usage fields", () => {
    const r = cached(aRecord({ replaces: "OLD" })) as unknown as Record<string, unknown>;
    for (const gone of ["description", "createdBy", "replaces", "lastUsedAt", "lastSource"]) {
      assert.equal(r[gone], undefined, gone);
    }
  });

  it("shares one copy of a repeated scope, owner and label set", () => {
    const shared = new SharedValues(1 << 20);
    const [a, b] = [1, 2].map((i) => {
      const r = decodeRecord(encodeRecord(aRecord({ id: `Cached${i}` })));
      return new CachedRecord(r.id, r, shared, 0);
    });
    assert.ok(a && b);
    assert.equal(a.labels, b.labels);
    assert.ok(Object.isFrozen(a.labels));
    const alone = new SharedValues(0);
    const unshared = new CachedRecord("x", aRecord(), alone, 0);
    assert.ok(entryBytes(b.id, b, shared) < entryBytes("x", unshared, alone));
  });

  it("counts a string's characters, two bytes each beyond Latin-1", () => {
    assert.equal(stringBytes(""), 16);
    assert.equal(stringBytes("x".repeat(9)), 32);
    assert.equal(stringBytes("é".repeat(8)), 24);
    assert.equal(stringBytes("€".repeat(8)), 32);
  });
});

describe("the cache's byte count is its heap", () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const heapUsed = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };

  const alwaysLive: InvalidationFeed = {
    live: true,
    onInvalidate: () => undefined,
    onLiveChange: () => undefined,
    close: () => Promise.resolve(),
  };

  /** Records as the Redis store hands them out: parsed from JSON on every read. */
  function jsonStore(json: (id: string) => string): TokenStore {
    return {
      kind: "redis",
      get: (id) => Promise.resolve(decodeRecord(json(id))),
    } as Partial<TokenStore> as TokenStore;
  }

  const N = 20_000;
  const idOf = (i: number) => `H${i.toString(36).padStart(11, "0")}`;
  const cases: [string, (i: number) => Partial<TokenRecord>][] = [
    [
      "records like the bench's (100 scopes, 10 owners, 1000 label sets)",
      (i) => ({
        scope: `bench/api-${i % 100}`,
        owner: `team-${i % 10}`,
        labels: { tenant: `t${i % 1000}` },
      }),
    ],
    [
      "records that share nothing (long scope, owner and labels of their own)",
      (i) => ({
        scope: `ns-${i}/scope-with-a-longer-name-${i}`,
        owner: `owner-${i}@example.com`,
        labels: { tenant: `tenant-${i}`, team: `team-${i}`, cost: `cc-${i}` },
        replacedBy: "Replaced0Id0",
        graceUntil: T0 + HOUR,
      }),
    ],
  ];
  for (const [name, shape] of cases) {
    it(`${name}: within 25% of the measured heap growth`, async () => {
      const json = (id: string) => {
        const i = Number.parseInt(id.slice(1), 36);
        const r = { ...aRecord(shape(i)), id, hash: hashSecret(KEY, { ...token, id }) };
        return encodeRecord(sealRecord(KEY, r));
      };
      const cache = createCachedStore(jsonStore(json), alwaysLive, {
        ttlMs: 60_000,
        negativeTtlMs: 1000,
        maxEntries: N,
        maxBytes: 1 << 30,
      });
      const ids = Array.from({ length: N }, (_, i) => idOf(i));
      const before = heapUsed();
      for (const id of ids) {
        const record = await cache.get(id);
        // As decide() does: the memo of the secret and seal checks takes its bytes too.
        assert.ok(record && recordVerified(KEY, { ...token, id }, record));
      }
      const grown = heapUsed() - before;
      const { entries, bytes } = cache.stats();
      assert.equal(entries, N);
      const ratio = bytes / grown;
      process.stdout.write(
        `# ${name}: counted ${(bytes / N).toFixed(0)} B/entry, heap grew ${(grown / N).toFixed(0)} B/entry (ratio ${ratio.toFixed(2)})\n`,
      );
      assert.ok(ratio > 0.75 && ratio < 1.25, `counted/measured = ${ratio.toFixed(2)}`);
      await cache.close();
    });
  }
});
