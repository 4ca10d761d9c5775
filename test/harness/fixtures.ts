// Loads CheckRequest fixtures (see test/fixtures/check-requests/README.md) with a token in place.
import { readFileSync } from "node:fs";

const FIXTURES = new URL("../fixtures/check-requests/", import.meta.url);

function substitute(value: unknown, token: string): unknown {
  if (typeof value === "string") return value.replaceAll("{{TOKEN}}", token);
  if (Array.isArray(value)) return value.map((v) => substitute(v, token));
  if (value && typeof value === "object") {
    const text = (value as { $text?: unknown }).$text;
    if (typeof text === "string") return Buffer.from(substitute(text, token) as string, "latin1");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, token)]));
  }
  return value;
}

export function checkRequestFixture(name: string, token: string): Record<string, unknown> {
  const json: unknown = JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8"));
  return substitute(json, token) as Record<string, unknown>;
}

/**
 * `token` with its last character changed, so its checksum no longer holds. Always a change: a
 * token that already ends in "0" gets "1" (a fixed "0" left one token in 62 intact).
 */
export function withBrokenChecksum(token: string): string {
  return token.slice(0, -1) + (token.endsWith("0") ? "1" : "0");
}
