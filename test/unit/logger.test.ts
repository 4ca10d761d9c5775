import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger, redactValue } from "../../src/observability/logger.ts";

const TOKEN = "tks_prod_AbCdEfGhIjKl0123456789abcdefghijABCDEFGHIJxyz12345";
const T0 = Date.parse("2026-11-25T12:00:00.123Z");

function auditLine(fields: Record<string, unknown>): string {
  const lines: string[] = [];
  createLogger({ level: "error", write: (l) => lines.push(l), clock: () => T0 }).audit(fields);
  assert.equal(lines.length, 1);
  return lines[0] ?? "";
}

/** What every line was before the audit fast path: copy, redact, stringify. */
function reference(fields: Record<string, unknown>): string {
  const record = { time: new Date(T0).toISOString(), level: "info", msg: "audit", audit: true };
  return JSON.stringify(redactValue({ ...record, ...fields })) + "\n";
}

const CASES: [string, Record<string, unknown>][] = [
  [
    "a check audit record",
    {
      event: "check",
      decision: "allow",
      reason: "ok",
      token_id: "AbCdEfGhIjKl",
      owner: 'team "a"\nnewline',
      namespace: "bench",
      path: "/v1/items",
      source: undefined,
      request_id: "7da45503",
    },
  ],
  ["a token inside a value", { event: "check", path: `/v1/${TOKEN}/x`, host: "h" }],
  ["a bearer credential inside a value", { note: "sent Bearer abc.def by mistake" }],
  ["secret-named keys", { authorization: "Basic x", hmac_key: 1, client_secret: { a: 1 } }],
  ["nested objects and arrays", { labels: { token: "x", team: TOKEN }, list: [TOKEN, 1, null] }],
  ["numbers, booleans, null, NaN", { a: 1.5, b: false, c: null, d: Number.NaN }],
  ["an error and a date", { err: new Error(`bad ${TOKEN}`), at: new Date(T0) }],
  ["functions and symbols are left out", { f: () => 1, s: Symbol("x"), kept: "yes" }],
  ["reserved keys override in place", { time: "earlier", level: "warn", x: 1 }],
  ["no fields", {}],
  ["array-index keys go first, as in any object", { event: "x", 7: "seven" }],
  ["a string that mentions bearer without a credential", { msg2: "bearer", ok: "yes" }],
];

for (const [name, fields] of CASES) {
  test(`an audit line is the redacted JSON of its record: ${name}`, () => {
    const line = auditLine(fields);
    assert.equal(line, reference(fields));
    assert.ok(!line.includes(TOKEN), "a token never reaches the line");
  });
}

test("lines within one millisecond share its timestamp, and the next millisecond has its own", () => {
  let now = T0;
  const lines: string[] = [];
  const logger = createLogger({ level: "info", write: (l) => lines.push(l), clock: () => now });
  logger.audit({ n: 1 });
  logger.log("info", "x");
  now += 1;
  logger.audit({ n: 2 });
  const times = lines.map((l) => (JSON.parse(l) as { time: string }).time);
  assert.deepEqual(times, [
    "2026-11-25T12:00:00.123Z",
    "2026-11-25T12:00:00.123Z",
    "2026-11-25T12:00:00.124Z",
  ]);
});
