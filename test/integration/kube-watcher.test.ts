// The pieces of `--scopes kubernetes` on their own, against the test Kubernetes API server:
// a throwing event handler, paged lists, one namespace only, and the status writer's answers
// to 409, 404 and 500.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { openKubeConnection } from "../../src/kube/kube-config.ts";
import { startKubeScopes } from "../../src/kube/kube-source.ts";
import { KubeScopeCache } from "../../src/kube/scope-cache.ts";
import { ScopeWatcher, type RestartReason } from "../../src/kube/scope-watcher.ts";
import { StatusWriter } from "../../src/kube/status-writer.ts";
import { listScopes } from "../../src/kube/tokenscope-api.ts";
import { ScopeIndex } from "../../src/scopes/scope-index.ts";
import type { ScopeEntry } from "../../src/domain/scope-types.ts";
import { eventually, READ_SPEC, tokenScope } from "../harness/kube-fixtures.ts";
import { TestKubeApi } from "../harness/kube-api.ts";

const VALIDATION = { maxTTLCapMs: 2160 * 3_600_000 };
const quiet = () => undefined;
let api: TestKubeApi;

before(async () => {
  api = await TestKubeApi.start();
});

after(async () => {
  await api.stop();
});

/** An index whose next update throws, as a bug in event handling would. */
class FlakyIndex extends ScopeIndex {
  failNext = false;
  override replaceAll(entries: readonly ScopeEntry[]): void {
    if (this.failNext) {
      this.failNext = false;
      throw new Error("boom in a handler");
    }
    super.replaceAll(entries);
  }
}

describe("the TokenScope watcher", () => {
  it("an exception in event handling restarts from a fresh list and never crashes the process", async () => {
    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on("uncaughtException", onCrash);
    process.on("unhandledRejection", onCrash);
    const index = new FlakyIndex();
    const reasons: RestartReason[] = [];
    const source = startKubeScopes({
      kubeconfig: api.kubeconfig,
      namespace: undefined,
      watchTimeoutMs: 3000,
      readyGraceMs: 1000,
      index,
      validation: VALIDATION,
      log: quiet,
      writeStatus: false,
      onRestart: (r) => reasons.push(r),
    });
    try {
      assert.ok(await source.synced(5000));
      index.failNext = true;
      api.apply(tokenScope("prod", "after-boom", READ_SPEC));
      await eventually("the scope after the failure", () => index.get("prod/after-boom"));
      assert.ok(reasons.includes("handler_error"), `restart reasons: ${reasons.join(",")}`);
      assert.deepEqual(crashes, []);
    } finally {
      await source.close();
      process.off("uncaughtException", onCrash);
      process.off("unhandledRejection", onCrash);
    }
  });

  it("callbacks that throw (log, metrics, readiness) neither crash the process nor stop the watch", async () => {
    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on("uncaughtException", onCrash);
    process.on("unhandledRejection", onCrash);
    const index = new ScopeIndex();
    const boom = () => {
      throw new Error("callback bug");
    };
    const watcher = new ScopeWatcher({
      connection: openKubeConnection(api.kubeconfig),
      cache: new KubeScopeCache({ index, validation: VALIDATION, onChange: quiet }),
      namespace: undefined,
      watchTimeoutMs: 3000,
      log: boom,
      onRestart: boom,
      onSynced: boom,
      onBroken: boom,
    });
    watcher.start();
    try {
      await eventually("listed", () => (index.loaded ? true : undefined));
      for (let i = 0; i < 3; i++) {
        await eventually("an open watch", () => (api.openWatches > 0 ? true : undefined));
        api.cutWatches();
        api.apply(tokenScope("prod", `cb${i}`, READ_SPEC));
      }
      await eventually("the last scope", () => index.get("prod/cb2"));
      assert.deepEqual(crashes, []);
    } finally {
      await watcher.stop();
      process.off("uncaughtException", onCrash);
      process.off("unhandledRejection", onCrash);
    }
  });

  it("lists in pages with limit/continue and watches only --watch-namespace", async () => {
    for (let i = 0; i < 5; i++) api.apply(tokenScope("team-a", `s${i}`, READ_SPEC));
    api.apply(tokenScope("team-b", "other", READ_SPEC));
    const index = new ScopeIndex();
    const cache = new KubeScopeCache({ index, validation: VALIDATION, onChange: quiet });
    const from = api.requests.length;
    const watcher = new ScopeWatcher({
      connection: openKubeConnection(api.kubeconfig),
      cache,
      namespace: "team-a",
      watchTimeoutMs: 3000,
      pageSize: 2,
      log: quiet,
      onRestart: quiet,
      onSynced: quiet,
      onBroken: quiet,
    });
    watcher.start();
    try {
      await eventually("five scopes", () => (index.size === 5 ? true : undefined));
      api.apply(tokenScope("team-b", "other2", READ_SPEC));
      api.apply(tokenScope("team-a", "s5", READ_SPEC));
      await eventually("the sixth", () => index.get("team-a/s5"));
      assert.equal(index.get("team-b/other2"), undefined);
      const mine = api.requests.slice(from);
      const lists = mine.filter((r) => r.query.watch === undefined);
      assert.deepEqual(
        lists.map((r) => [r.query.limit, r.query.continue !== undefined]),
        [
          ["2", false],
          ["2", true],
          ["2", true],
        ],
      );
      for (const r of mine)
        assert.equal(r.path, "/apis/tokenscope.dev/v1alpha1/namespaces/team-a/tokenscopes");
    } finally {
      await watcher.stop();
    }
  });
});

describe("the status writer", () => {
  async function writerWithStaleCache(names: string[]) {
    const conn = openKubeConnection(api.kubeconfig);
    const list = await listScopes(conn, { namespace: "w", pageSize: 100, timeoutMs: 2000 });
    const writer = new StatusWriter({
      connection: conn,
      validation: VALIDATION,
      log: quiet,
      timeoutMs: 2000,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    const cache = new KubeScopeCache({
      index: new ScopeIndex(),
      validation: VALIDATION,
      onChange: quiet,
    });
    writer.attach(cache);
    cache.replaceAll(list.objects.filter((o) => names.includes(o.name)));
    return writer;
  }

  const patchesOf = (name: string) =>
    api.patches().filter((p) => p.path.endsWith(`/w/tokenscopes/${name}/status`));

  it("a stale copy gets 409 and is not retried; a deleted object gets 404 and is not retried", async () => {
    api.apply(tokenScope("w", "stale", READ_SPEC));
    api.apply(tokenScope("w", "gone", READ_SPEC));
    const writer = await writerWithStaleCache(["stale", "gone"]);
    const stale = api.state.get("w", "stale");
    api.apply({ ...stale, metadata: { ...stale?.metadata, labels: { newer: "yes" } } });
    api.delete("w", "gone");
    writer.enqueue("w/stale", 0);
    writer.enqueue("w/gone", 0);
    await eventually("both answered", () =>
      patchesOf("stale").length + patchesOf("gone").length === 2 ? true : undefined,
    );
    await sleep(500);
    await writer.stop();
    assert.deepEqual(
      patchesOf("stale").map((p) => p.status),
      [409],
    );
    assert.deepEqual(
      patchesOf("gone").map((p) => p.status),
      [404],
    );
  });

  it("a 500 is retried with backoff until the status is written", async () => {
    api.apply(tokenScope("w", "retry", READ_SPEC));
    const writer = await writerWithStaleCache(["retry"]);
    api.failPatches = 3;
    writer.enqueue("w/retry", 0);
    await eventually("written", () =>
      patchesOf("retry").some((p) => p.status === 200) ? true : undefined,
    );
    await writer.stop();
    assert.deepEqual(
      patchesOf("retry").map((p) => p.status),
      [500, 500, 500, 200],
    );
    const status = api.state.get("w", "retry")?.status as { conditions: { status: string }[] };
    assert.equal(status.conditions[0]?.status, "True");
  });
});
