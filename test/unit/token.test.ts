import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  TOKEN_SCAN_REGEX,
  formatToken,
  generateToken,
  hashSecret,
  parseToken,
  sealMatches,
  sealRecord,
  recordSecretMatches,
  secretMatches,
} from "../../src/domain/token.ts";
import { encodeBase62, randomBase62 } from "../../src/domain/base62.ts";

const vectors = JSON.parse(
  readFileSync(new URL("../fixtures/token-vectors.json", import.meta.url), "utf8"),
) as { valid: { token: string; environment: string; id: string; crc32: number }[] };

describe("token format", () => {
  for (const v of vectors.valid) {
    it(`parses the independently computed vector for env ${v.environment}`, () => {
      const parsed = parseToken(v.token);
      assert.ok(parsed);
      assert.equal(parsed.environment, v.environment);
      assert.equal(parsed.id, v.id);
      assert.equal(formatToken(parsed.environment, parsed.id, parsed.secret), v.token);
      assert.equal(v.token.slice(-6), encodeBase62(v.crc32, 6));
    });
  }

  it("a generated token parses back and matches the scanner regex", () => {
    for (let i = 0; i < 200; i++) {
      const { token, parsed } = generateToken("prod", randomBytes);
      assert.match(token, TOKEN_SCAN_REGEX);
      assert.deepEqual(parseToken(token), parsed);
      assert.equal(parsed.id.length, 12);
      assert.equal(parsed.secret.length, 32);
    }
  });

  const good = vectors.valid[0]?.token ?? "";
  const malformed: [string, string][] = [
    ["empty", ""],
    ["wrong prefix", "tkx" + good.slice(3)],
    ["truncated by one", good.slice(0, -1)],
    ["one extra character", good + "a"],
    ["upper-case environment", good.replace("prod", "PROD")],
    ["environment over 12 chars", good.replace("prod", "abcdefghijklm")],
    ["missing environment", good.replace("tks_prod_", "tks__")],
    ["non-base62 body", good.slice(0, 20) + "-" + good.slice(21)],
    ["whitespace inside", good.slice(0, 20) + " " + good.slice(21)],
    [
      "check digits of another token",
      good.slice(0, -6) + (vectors.valid[1]?.token ?? "").slice(-6),
    ],
    ["absurdly long", "tks_prod_" + "a".repeat(100_000)],
  ];
  for (const [name, token] of malformed) {
    it(`rejects a token with ${name}`, () => {
      assert.equal(parseToken(token), undefined);
    });
  }

  it("detects every single-character typo in id, secret and checksum", () => {
    const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let accepted = 0;
    for (let pos = "tks_prod_".length; pos < good.length; pos++) {
      for (const c of alphabet) {
        if (c === good[pos]) continue;
        if (parseToken(good.slice(0, pos) + c + good.slice(pos + 1))) accepted++;
      }
    }
    assert.equal(accepted, 0);
  });

  it("base62 random strings use the whole alphabet without bias toward the first letters", () => {
    const s = randomBase62(62_000, randomBytes);
    const counts = new Map<string, number>();
    for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
    assert.equal(counts.size, 62);
    for (const n of counts.values()) assert.ok(n > 700 && n < 1300, `count ${n}`);
  });
});

describe("token hashing", () => {
  const key = Buffer.alloc(32, 7);
  const otherKey = Buffer.alloc(32, 8);
  const parsed = parseToken(vectors.valid[0]?.token ?? "");
  assert.ok(parsed);

  it("the stored hash matches only the same secret under the same key", () => {
    const stored = hashSecret(key, parsed);
    assert.equal(secretMatches(key, parsed, stored), true);
    assert.equal(secretMatches(otherKey, parsed, stored), false);
    assert.equal(secretMatches(key, { ...parsed, secret: "x".repeat(32) }, stored), false);
  });

  it("a hash cannot be moved to another id or environment", () => {
    const stored = hashSecret(key, parsed);
    assert.equal(secretMatches(key, { ...parsed, id: "000000000000" }, stored), false);
    assert.equal(secretMatches(key, { ...parsed, environment: "staging" }, stored), false);
  });

  it("a record's remembered secret answers exactly as the keyed hash does", () => {
    const record = { hash: hashSecret(key, parsed) };
    const wrong = { ...parsed, secret: "x".repeat(32) };
    assert.equal(recordSecretMatches(key, wrong, record), false, "wrong secret, nothing known");
    assert.equal(recordSecretMatches(key, parsed, record), true, "first check: keyed hash");
    assert.equal(recordSecretMatches(key, parsed, record), true, "second check: remembered");
    assert.equal(recordSecretMatches(key, wrong, record), false, "wrong secret, one known");
    assert.equal(recordSecretMatches(key, { ...parsed, id: "000000000000" }, record), false);
    assert.equal(recordSecretMatches(key, { ...parsed, environment: "staging" }, record), false);
    // Another key, or another record object with a tampered hash, is checked in full again.
    assert.equal(recordSecretMatches(otherKey, parsed, record), false);
    assert.equal(recordSecretMatches(key, parsed, { hash: hashSecret(otherKey, parsed) }), false);
    assert.equal(recordSecretMatches(key, parsed, record), true);
  });

  it("a corrupt stored hash never matches", () => {
    assert.equal(secretMatches(key, parsed, ""), false);
    assert.equal(secretMatches(key, parsed, "zz"), false);
    assert.equal(secretMatches(key, parsed, hashSecret(key, parsed).slice(0, 62)), false);
  });

  it("the hash does not contain the secret", () => {
    assert.ok(!hashSecret(key, parsed).includes(parsed.secret));
  });
});

describe("record seals", () => {
  const key = randomBytes(32);
  const sealed = sealRecord(key, {
    id: "AbCdEfGhIjKl",
    environment: "prod",
    scope: "staging/reports-read",
    owner: "alice",
    labels: { tenant: "acme", region: "eu" },
    notBefore: 1000,
    expiresAt: 2000,
    createdAt: 1000,
  });

  it("a sealed record matches under its key, again and again", () => {
    assert.ok(sealMatches(key, sealed));
    assert.ok(sealMatches(key, sealed), "a checked record stays valid for its key");
  });

  it("another key never matches, even for a record already checked under the right one", () => {
    assert.ok(!sealMatches(randomBytes(32), sealed));
  });

  it("any sealed field changed without the key breaks the seal; label order does not", () => {
    const edits: Record<string, unknown>[] = [
      { scope: "prod/reports-read" },
      { owner: "mallory" },
      { labels: { tenant: "globex", region: "eu" } },
      { expiresAt: 3000 },
      { notBefore: 0 },
      { id: "ZzCdEfGhIjKl" },
      { seal: undefined },
    ];
    for (const edit of edits)
      assert.ok(!sealMatches(key, { ...sealed, ...edit }), JSON.stringify(edit));
    assert.ok(sealMatches(key, { ...sealed, labels: { region: "eu", tenant: "acme" } }));
  });
});
