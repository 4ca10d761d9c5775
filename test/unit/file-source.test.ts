import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rename, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { watchScopeFiles, type ScopeFileWatcher } from "../../src/scopes/file-source.ts";
import { ScopeIndex } from "../../src/scopes/scope-index.ts";

interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

const validation = { maxTTLCapMs: 2160 * 3_600_000 };
const examples = fileURLToPath(new URL("../../deploy/examples/scopes/", import.meta.url));

function scopeYaml(namespace: string, name: string, methods = '["GET"]'): string {
  return `apiVersion: tokenscope.dev/v1alpha1
kind: TokenScope
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  owner: team-${name}
  rules:
    - paths: ["/v1/${name}/*"]
      methods: ${methods}
`;
}

/** Polls until `check` holds; the file watcher is asynchronous by nature. */
async function eventually(check: () => boolean, what: string, timeoutMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("scope files", () => {
  let dir: string;
  let index: ScopeIndex;
  let logs: LogLine[];
  let watcher: ScopeFileWatcher | undefined;

  const open = async (path: string) => {
    watcher = await watchScopeFiles({
      path,
      index,
      validation,
      log: (level, msg, fields = {}) => logs.push({ level, msg, fields }),
    });
    return watcher;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tokenscope-scopes-"));
    index = new ScopeIndex();
    logs = [];
  });

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("loads every document of a multi-document file, skipping empty ones", async () => {
    const list = `apiVersion: v1\nkind: List\nitems:\n  - ${scopeYaml("prod", "c").replaceAll("\n", "\n    ")}`;
    const text = [scopeYaml("prod", "a"), "", "# only a comment", scopeYaml("staging", "b"), list];
    await writeFile(join(dir, "scopes.yaml"), text.join("---\n"));
    await open(dir);
    assert.equal(index.loaded, true);
    assert.deepEqual(
      index.list().map((e) => [e.key, e.ready]),
      [
        ["prod/a", true],
        ["prod/c", true],
        ["staging/b", true],
      ],
    );
  });

  it("an invalid document is not ready, and the log names file, object and field", async () => {
    const file = join(dir, "bad.yaml");
    await writeFile(
      file,
      `${scopeYaml("prod", "good")}---\n${scopeYaml("prod", "bad", '["get"]')}`,
    );
    await open(dir);
    assert.equal(index.get("prod/good")?.ready, true);
    const bad = index.get("prod/bad");
    assert.ok(bad && !bad.ready, JSON.stringify(bad));
    assert.equal(bad.problems[0]?.field, "spec.rules[0].methods[0]");
    const line = logs.find((l) => l.level === "warn" && l.fields.object === "prod/bad");
    assert.ok(line, JSON.stringify(logs));
    assert.equal(line.fields.file, file);
    assert.equal(line.fields.field, "spec.rules[0].methods[0]");
    assert.match(String(line.fields.message), /uppercase/);
  });

  it("a document without namespace/name is logged by its position and left out", async () => {
    await writeFile(join(dir, "a.yaml"), `${scopeYaml("prod", "a")}---\nkind: TokenScope\n`);
    await open(dir);
    assert.deepEqual(
      index.list().map((e) => e.key),
      ["prod/a"],
    );
    assert.ok(logs.some((l) => l.fields.object === "document 2" && l.fields.field === "metadata"));
  });

  it("a YAML syntax error names the file and line; the other files still load", async () => {
    const broken = join(dir, "broken.yaml");
    await writeFile(broken, "apiVersion: tokenscope.dev/v1alpha1\nkind: a: b\n");
    await writeFile(join(dir, "ok.yaml"), scopeYaml("prod", "ok"));
    await open(dir);
    assert.deepEqual(
      index.list().map((e) => e.key),
      ["prod/ok"],
    );
    const line = logs.find((l) => l.level === "error");
    assert.equal(line?.fields.file, broken);
    assert.equal(line.fields.line, 2);
    assert.match(String(line.fields.error), /at line 2, column 7$/);
  });

  it("editing a file reloads the index within a second", async () => {
    const file = join(dir, "a.yaml");
    await writeFile(file, scopeYaml("prod", "a"));
    await open(dir);
    assert.ok(index.get("prod/a"));
    await writeFile(file, scopeYaml("prod", "renamed"));
    await eventually(() => index.get("prod/renamed")?.ready === true, "prod/renamed loaded", 1000);
    assert.equal(index.get("prod/a"), undefined);
  });

  it("a file in a new subfolder is picked up", async () => {
    await open(dir);
    await mkdir(join(dir, "team"));
    await writeFile(join(dir, "team", "b.yml"), scopeYaml("prod", "b"));
    await eventually(() => index.get("prod/b") !== undefined, "prod/b loaded");
  });

  it("a deleted file removes its scopes", async () => {
    await writeFile(join(dir, "a.yaml"), scopeYaml("prod", "a"));
    await writeFile(
      join(dir, "b.json"),
      JSON.stringify({
        apiVersion: "tokenscope.dev/v1alpha1",
        kind: "TokenScope",
        metadata: { name: "b", namespace: "prod" },
        spec: { owner: "o", rules: [{ methods: ["GET"], paths: ["/b"] }] },
      }),
    );
    await open(dir);
    assert.equal(index.size, 2);
    await unlink(join(dir, "a.yaml"));
    await eventually(() => index.get("prod/a") === undefined, "prod/a removed");
    assert.equal(index.get("prod/b")?.ready, true);
  });

  it("a half-written edit keeps the file's previous scopes", async () => {
    const file = join(dir, "a.yaml");
    await writeFile(file, scopeYaml("prod", "a"));
    const w = await open(dir);
    await writeFile(file, "metadata: {name: a\n");
    await w.reload();
    assert.equal(index.get("prod/a")?.ready, true);
    assert.ok(logs.some((l) => l.level === "error" && l.fields.kept === 1));
  });

  it("a duplicate namespace/name keeps the first file's scope and reports the second", async () => {
    await writeFile(join(dir, "1.yaml"), scopeYaml("prod", "a"));
    await writeFile(join(dir, "2.yaml"), scopeYaml("prod", "a", '["POST"]'));
    await open(dir);
    const entry = index.get("prod/a");
    assert.ok(entry?.ready);
    assert.deepEqual(entry.scope.summary[0], "GET on any host paths /v1/a/*");
    const dup = logs.find((l) => l.msg.includes("duplicate"));
    assert.equal(dup?.fields.file, join(dir, "2.yaml"));
    assert.equal(dup.fields.firstFile, join(dir, "1.yaml"));
  });

  it("a single file replaced by rename, as editors save, is reloaded", async () => {
    const file = join(dir, "scopes.yaml");
    await writeFile(file, scopeYaml("prod", "a"));
    await open(file);
    for (const name of ["b", "c"]) {
      await writeFile(join(dir, ".scopes.yaml.tmp"), scopeYaml("prod", name));
      await rename(join(dir, ".scopes.yaml.tmp"), file);
      await eventually(() => index.get(`prod/${name}`) !== undefined, `prod/${name} loaded`);
    }
    assert.equal(index.size, 1);
  });

  it("objects of other kinds next to the scopes are ignored", async () => {
    await writeFile(join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    await open(dir);
    assert.equal(index.size, 0);
    assert.equal(index.loaded, true);
    assert.ok(!logs.some((l) => l.level === "warn" || l.level === "error"));
  });

  it("a path that does not exist is refused at start", async () => {
    await assert.rejects(open(join(dir, "nope")), /scope path .*nope does not exist/);
    assert.equal(index.loaded, false);
  });

  it("the examples in deploy/examples/scopes all load ready", async () => {
    await open(examples);
    const entries = index.list();
    assert.deepEqual(
      entries.map((e) => [e.key, e.ready]),
      [
        ["prod/orders-write", true],
        ["prod/reports-canary", true],
        ["prod/reports-read", true],
        ["staging/reports-read", true],
      ],
    );
    assert.ok(!logs.some((l) => l.level === "warn" || l.level === "error"), JSON.stringify(logs));
  });
});
