import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { countInventory, inventoryState } from "../../src/domain/token-inventory.ts";
import type { TokenRecord } from "../../src/domain/token-record.ts";

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;
const WEEK = 168 * HOUR;

function rec(overrides: Partial<TokenRecord>): TokenRecord {
  return {
    id: "abcdefghijkl",
    hash: "00",
    scope: "prod/reports-read",
    owner: "team-analytics",
    environment: "prod",
    labels: {},
    description: "",
    createdAt: NOW - HOUR,
    createdBy: "alice",
    notBefore: NOW - HOUR,
    expiresAt: NOW + 30 * 24 * HOUR,
    ...overrides,
  };
}

describe("token inventory state", () => {
  const cases: [string, Partial<TokenRecord>, string][] = [
    ["a token with a month left is active", {}, "active"],
    [
      "a token expiring in six days is expiring soon",
      { expiresAt: NOW + 6 * 24 * HOUR },
      "expiring_soon",
    ],
    [
      "a token expiring exactly at the window's edge is expiring soon",
      { expiresAt: NOW + WEEK },
      "expiring_soon",
    ],
    ["a token expiring just after the window is active", { expiresAt: NOW + WEEK + 1 }, "active"],
    ["an expired token is expired", { expiresAt: NOW - 1 }, "expired"],
    [
      "a revoked token is revoked, even if expired too",
      { revokedAt: NOW - 5, expiresAt: NOW - 1 },
      "revoked",
    ],
    [
      "a rotated token in a short grace is expiring soon",
      { replacedBy: "x", graceUntil: NOW + HOUR },
      "expiring_soon",
    ],
    [
      "a rotated token past its grace is expired",
      { replacedBy: "x", graceUntil: NOW - 1 },
      "expired",
    ],
    ["a token valid from tomorrow is active", { notBefore: NOW + 24 * HOUR }, "active"],
  ];
  for (const [name, overrides, state] of cases) {
    it(name, () => assert.equal(inventoryState(rec(overrides), NOW, WEEK), state));
  }
});

describe("token inventory counts", () => {
  it("counts by scope and state, with zeros for every state of every known scope", () => {
    const counts = countInventory(
      [
        rec({}),
        rec({ expiresAt: NOW + HOUR }),
        rec({ revokedAt: NOW - 1 }),
        rec({ scope: "gone/old", expiresAt: NOW - 1 }),
      ],
      ["prod/reports-read", "prod/ci-deploy"],
      NOW,
      WEEK,
    );
    assert.deepEqual(Object.fromEntries(counts), {
      "prod/reports-read": { active: 1, expiring_soon: 1, expired: 0, revoked: 1 },
      "prod/ci-deploy": { active: 0, expiring_soon: 0, expired: 0, revoked: 0 },
      "gone/old": { active: 0, expiring_soon: 0, expired: 1, revoked: 0 },
    });
  });
});
