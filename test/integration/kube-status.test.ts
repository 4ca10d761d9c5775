// TokenScope status written through the status subresource by two replicas of `serve` watching
// the same test Kubernetes API server: the right Ready condition, observedGeneration, and no
// write of a status that did not change (PATCHes counted on the server).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { eventually, READ_SPEC, tokenScope } from "../harness/kube-fixtures.ts";
import { TestKubeApi } from "../harness/kube-api.ts";
import type { Obj } from "../harness/kube-api-state.ts";
import { startTestServer, type TestServer } from "../harness/server.ts";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}

let api: TestKubeApi;
const replicas: TestServer[] = [];

function startReplica(): Promise<TestServer> {
  return startTestServer({
    scopes: "kubernetes",
    extraArgs: [`--kubeconfig=${api.kubeconfig}`, "--kube-watch-timeout=3s"],
  });
}

function ready(obj: Obj | undefined): Condition | undefined {
  const status = obj?.status as { conditions?: Condition[] } | undefined;
  return status?.conditions?.find((c) => c.type === "Ready");
}

/** Waits until the object's status is for its current generation; returns it. */
async function settled(name: string): Promise<{ obj: Obj; cond: Condition }> {
  const { value } = await eventually(`status of prod/${name}`, () => {
    const obj = api.state.get("prod", name);
    const cond = ready(obj);
    const gen = obj?.metadata.generation;
    const observed = (obj?.status as { observedGeneration?: number } | undefined)
      ?.observedGeneration;
    return obj && cond && cond.observedGeneration === gen && observed === gen
      ? { obj, cond }
      : undefined;
  });
  return value;
}

const okPatches = (name: string) =>
  api
    .patches()
    .filter((p) => p.path.endsWith(`/prod/tokenscopes/${name}/status`) && p.status === 200).length;

before(async () => {
  api = await TestKubeApi.start();
  replicas.push(await startReplica(), await startReplica());
});

after(async () => {
  for (const r of replicas) await r.stop();
  await api.stop();
});

describe("TokenScope status", () => {
  const cases: [string, Record<string, unknown>, string, string, RegExp][] = [
    ["good", READ_SPEC, "True", "Accepted", /^$/],
    [
      "no-methods",
      { owner: "x", rules: [{ paths: ["/v1/*"] }] },
      "False",
      "InvalidRule",
      /spec\.rules\[0\]\.methods: is required/,
    ],
    [
      "bad-cidr",
      { ...READ_SPEC, sources: { cidrs: ["10.0.0.0/33"] } },
      "False",
      "InvalidSource",
      /spec\.sources\.cidrs\[0\]/,
    ],
    [
      "no-owner-bad-rule",
      { rules: [{ paths: ["v1"], methods: ["GET"] }] },
      "False",
      "InvalidSpec",
      /spec\.owner: is required.*; spec\.rules\[0\]\.paths\[0\]/,
    ],
    [
      "any-method",
      { owner: "x", rules: [{ paths: ["/v1/*"], methods: ["*"] }] },
      "True",
      "Accepted",
      /^accepted with warnings: spec\.rules\[0\]\.methods: "\*" allows any method/,
    ],
  ];
  for (const [name, spec, status, reason, message] of cases) {
    it(`${name}: Ready=${status} ${reason}, with observedGeneration, written once by two replicas`, async () => {
      api.apply(tokenScope("prod", name, spec));
      const { obj, cond } = await settled(name);
      assert.equal(cond.status, status);
      assert.equal(cond.reason, reason);
      assert.match(cond.message, message);
      assert.match(cond.lastTransitionTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(obj.metadata.generation, 1);
      await sleep(1000); // the other replica has seen the write by now, and writes nothing
      assert.equal(okPatches(name), 1, "one successful status write for one change");
      for (const p of api.patches()) assert.equal(p.contentType, "application/merge-patch+json");
    });
  }

  it("a spec change bumps observedGeneration and keeps lastTransitionTime while Ready stays True", async () => {
    const before = await settled("good");
    await sleep(1100); // a new lastTransitionTime would now differ from the old one
    api.apply(tokenScope("prod", "good", { ...READ_SPEC, description: "changed" }));
    await eventually("generation 2 observed", () => {
      const c = ready(api.state.get("prod", "good"));
      return c?.observedGeneration === 2 ? c : undefined;
    });
    const after = await settled("good");
    assert.equal(after.obj.metadata.generation, 2);
    assert.equal(after.cond.lastTransitionTime, before.cond.lastTransitionTime);
    assert.equal(okPatches("good"), 2);
  });

  it("a fix flips Ready to True with a new lastTransitionTime", async () => {
    const before = await settled("no-methods");
    await sleep(1100);
    api.apply(
      tokenScope("prod", "no-methods", {
        owner: "x",
        rules: [{ paths: ["/v1/*"], methods: ["GET"] }],
      }),
    );
    const { value } = await eventually("Ready=True", () => {
      const c = ready(api.state.get("prod", "no-methods"));
      return c?.status === "True" ? c : undefined;
    });
    assert.equal(value.reason, "Accepted");
    assert.equal(value.observedGeneration, 2);
    assert.ok(value.lastTransitionTime > before.cond.lastTransitionTime);
  });

  it("relists, cut watches and a restarted replica write nothing when nothing changed", async () => {
    for (const name of ["good", "no-methods", "bad-cidr"]) await settled(name);
    await sleep(1000);
    const patchesBefore = api.patches().length;
    const listsBefore = api.requests.filter(
      (r) => r.method === "GET" && r.query.watch === undefined,
    ).length;
    api.cutWatches();
    // A metadata-only change (no new generation, so no new status), then compaction: both
    // replicas come back with a resourceVersion the server forgot, and relist.
    const good = api.state.get("prod", "good");
    api.apply({ ...good, metadata: { ...good?.metadata, labels: { touched: "yes" } } });
    api.state.compact();
    await eventually("both replicas relisted", () =>
      api.requests.filter((r) => r.method === "GET" && r.query.watch === undefined).length >=
      listsBefore + 2
        ? true
        : undefined,
    );
    const restarted = replicas.pop();
    await restarted?.stop();
    replicas.push(await startReplica());
    await eventually("the new replica listed", () =>
      api.requests.filter((r) => r.method === "GET" && r.query.watch === undefined).length >=
      listsBefore + 3
        ? true
        : undefined,
    );
    await sleep(1500); // past the writer's random delay
    assert.deepEqual(
      api
        .patches()
        .slice(patchesBefore)
        .map((p) => p.path),
      [],
      "no PATCH for a status that is already right",
    );
    const count = (status: number) => api.patches().filter((p) => p.status === status).length;
    console.log(
      `# two replicas, whole suite: ${count(200)} PATCH 200, ${count(409)} PATCH 409 (lost races), ${api.patches().length} in all`,
    );
  });
});
