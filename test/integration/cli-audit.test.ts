// `tokenscope audit` and the usage columns, run as a person would: the CLI as a child process on
// the embedded store of a temp directory.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runCli } from "../harness/cli.ts";
import { tempDir } from "../harness/server.ts";

let dir: string;

function cli(...args: string[]) {
  return runCli(args, { cwd: dir, env: { ...process.env, TOKENSCOPE_LOG_LEVEL: "warn" } });
}

function json(...args: string[]): unknown {
  const r = cli(...args, "-o", "json");
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const issuedId = (...args: string[]) => (json(...args) as { record: { id: string } }).record.id;
const eventsOf = (...args: string[]) => json("audit", ...args) as Event[];

interface Event {
  time: string;
  event: string;
  token_id: string;
  scope: string;
  owner: string;
  by: string;
  replaces?: string;
}

const ids: Record<string, string> = {};

before(() => {
  dir = tempDir("cli-audit");
  const issue = (scope: string, owner: string) =>
    issuedId("token", "issue", "--scope", scope, "--owner", owner);
  ids.read = issue("prod/reports-read", "team-analytics");
  ids.write = issue("prod/orders-write", "team-orders");
  ids.rotated = issuedId("token", "rotate", ids.read);
  assert.equal(cli("token", "revoke", ids.write).code, 0);
});

describe("tokenscope audit", () => {
  it("shows every lifecycle action, oldest first, with who did it", () => {
    const events = eventsOf();
    assert.deepEqual(
      events.map((e) => [e.event, e.token_id, e.scope, e.owner, e.replaces]),
      [
        ["issue", ids.read, "prod/reports-read", "team-analytics", undefined],
        ["issue", ids.write, "prod/orders-write", "team-orders", undefined],
        ["rotate", ids.rotated, "prod/reports-read", "team-analytics", ids.read],
        ["revoke", ids.write, "prod/orders-write", "team-orders", undefined],
      ],
    );
    for (const e of events) {
      assert.ok(e.by.length > 0);
      assert.ok(Date.now() - Date.parse(e.time) < 60_000, "times are ISO 8601 and recent");
    }
  });

  it("filters by token (a rotation shows under both ids), scope and age", () => {
    const of = (...args: string[]) => eventsOf(...args).map((e) => e.event);
    assert.deepEqual(of("--token", ids.read ?? ""), ["issue", "rotate"]);
    assert.deepEqual(of("--token", ids.rotated ?? ""), ["rotate"]);
    assert.deepEqual(of("--scope", "prod/orders-write"), ["issue", "revoke"]);
    assert.deepEqual(of("--since", "1h").length, 4);
    assert.deepEqual(of("--since", "1ms", "--scope", "prod/nothing"), []);
  });

  it("prints a table for people, without secrets", () => {
    const r = cli("audit", "--scope", "prod/reports-read");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^TIME\s+EVENT\s+TOKEN\s+SCOPE\s+OWNER\s+BY\s+REPLACES$/);
    assert.equal(lines.length, 3);
    assert.ok(!r.stdout.includes("tks_"), "no token appears");
  });

  it("refuses a malformed filter with a usage error", () => {
    for (const args of [
      ["--token", "not-an-id"],
      ["--scope", "no-slash"],
      ["--since", "yesterday"],
    ]) {
      const r = cli("audit", ...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /^tokenscope: --/);
    }
  });

  it("shows where a token was last used in token list and inspect", () => {
    const list = cli("token", "list");
    assert.match(list.stdout.split("\n")[0] ?? "", /LAST USED\s+FROM$/);
    assert.match(cli("token", "inspect", ids.rotated ?? "").stdout, /last used: {3}never/);
  });
});
