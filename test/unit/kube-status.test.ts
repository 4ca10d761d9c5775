// The pure parts of --scopes kubernetes: the Ready verdict, the status patch (or none), the
// backoff, and the parsing of watch events.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Backoff, backoffDelay } from "../../src/kube/backoff.ts";
import {
  kubeTime,
  readyVerdict,
  reasonFor,
  statusPatch,
} from "../../src/kube/status-conditions.ts";
import { parseWatchEvent, toScopeObject, type ScopeObject } from "../../src/kube/watch-events.ts";

const p = (field: string) => ({ field, message: "is wrong" });

describe("reasonFor", () => {
  const rows: [string, string[], string][] = [
    ["rules only", ["spec.rules[0].methods", "spec.rules[1].paths[0]"], "InvalidRule"],
    ["the rules list itself", ["spec.rules"], "InvalidRule"],
    ["sources only", ["spec.sources.cidrs[0]", "spec.sources.principals[2]"], "InvalidSource"],
    ["token policy", ["spec.tokenPolicy.maxTTL"], "InvalidTokenPolicy"],
    ["rate limit", ["spec.rateLimit.burst"], "InvalidRateLimit"],
    ["owner", ["spec.owner"], "InvalidSpec"],
    ["owner and a rule", ["spec.owner", "spec.rules[0].methods"], "InvalidSpec"],
    ["a field merely starting like rules", ["spec.rulesX"], "InvalidSpec"],
    ["metadata", ["metadata.name"], "InvalidMetadata"],
    ["metadata and spec", ["metadata.name", "spec.owner"], "Invalid"],
  ];
  for (const [what, fields, reason] of rows) {
    it(`${what} → ${reason}`, () => assert.equal(reasonFor(fields.map(p)), reason));
  }
});

describe("readyVerdict", () => {
  it("lists every problem with its field", () => {
    const v = readyVerdict([p("spec.owner"), p("spec.rules[0].methods")], []);
    assert.deepEqual(v, {
      status: "False",
      reason: "InvalidSpec",
      message: "spec.owner: is wrong; spec.rules[0].methods: is wrong",
    });
  });
  it("caps a long list", () => {
    const v = readyVerdict(
      Array.from({ length: 25 }, (_, i) => p(`spec.rules[${i}]`)),
      [],
    );
    assert.match(v.message, /; and 5 more$/);
  });
  it("accepts with an empty message, or with the warnings", () => {
    assert.deepEqual(readyVerdict([], []), { status: "True", reason: "Accepted", message: "" });
    assert.equal(readyVerdict([], ["w1", "w2"]).message, "accepted with warnings: w1; w2");
  });
});

function object(status: unknown, generation = 3, rv = "42"): ScopeObject {
  const o = toScopeObject({
    metadata: { name: "n", namespace: "ns", resourceVersion: rv, generation },
    ...(status === undefined ? {} : { status }),
  });
  assert.ok(!("why" in o));
  return o;
}

const NOW = Date.parse("2026-11-25T10:00:00.700Z");
const OK = readyVerdict([], []);
const BAD = readyVerdict([p("spec.rules[0].methods")], []);
const cond = (status: string, reason: string, message: string, gen: number, at: string) => ({
  type: "Ready",
  status,
  reason,
  message,
  observedGeneration: gen,
  lastTransitionTime: at,
});

describe("statusPatch", () => {
  it("writes Ready and observedGeneration, conditional on the resourceVersion", () => {
    assert.deepEqual(statusPatch(object(undefined), OK, NOW), {
      metadata: { resourceVersion: "42" },
      status: {
        observedGeneration: 3,
        conditions: [cond("True", "Accepted", "", 3, "2026-11-25T10:00:00Z")],
      },
    });
  });

  it("writes nothing when the object already says it", () => {
    const status = {
      observedGeneration: 3,
      conditions: [cond("True", "Accepted", "", 3, "2026-01-01T00:00:00Z")],
    };
    assert.equal(statusPatch(object(status), OK, NOW), undefined);
  });

  const stale: [string, unknown][] = [
    [
      "an older generation",
      {
        observedGeneration: 2,
        conditions: [cond("True", "Accepted", "", 2, "2026-01-01T00:00:00Z")],
      },
    ],
    [
      "another message",
      {
        observedGeneration: 3,
        conditions: [cond("True", "Accepted", "x", 3, "2026-01-01T00:00:00Z")],
      },
    ],
    [
      "no top-level observedGeneration",
      { conditions: [cond("True", "Accepted", "", 3, "2026-01-01T00:00:00Z")] },
    ],
  ];
  for (const [what, status] of stale) {
    it(`rewrites ${what}, keeping lastTransitionTime while Ready stays True`, () => {
      const patch = statusPatch(object(status), OK, NOW);
      assert.equal(patch?.status.conditions.at(-1)?.lastTransitionTime, "2026-01-01T00:00:00Z");
    });
  }

  it("moves lastTransitionTime when Ready flips, and keeps other condition types", () => {
    const other = {
      type: "Synced",
      status: "True",
      reason: "X",
      message: "",
      lastTransitionTime: "2025-01-01T00:00:00Z",
    };
    const status = {
      observedGeneration: 3,
      conditions: [other, cond("True", "Accepted", "", 3, "2026-01-01T00:00:00Z")],
    };
    const patch = statusPatch(object(status), BAD, NOW);
    assert.deepEqual(patch?.status.conditions, [
      other,
      cond("False", "InvalidRule", "spec.rules[0].methods: is wrong", 3, "2026-11-25T10:00:00Z"),
    ]);
  });

  it("survives a status of the wrong shape", () => {
    for (const status of [
      "x",
      [],
      { conditions: "x" },
      { conditions: [null, 1, { type: "Ready" }] },
    ]) {
      assert.equal(statusPatch(object(status), OK, NOW)?.status.conditions.at(-1)?.status, "True");
    }
  });

  it("formats metav1.Time in whole seconds", () =>
    assert.equal(kubeTime(NOW), "2026-11-25T10:00:00Z"));
});

describe("backoff", () => {
  it("doubles from the initial delay up to the cap, with jitter in the upper half", () => {
    const policy = { initialMs: 100, maxMs: 1000 };
    const low = [0, 1, 2, 3, 4, 10, 100].map((n) => backoffDelay(policy, n, () => 0));
    const high = [0, 1, 2, 3, 4, 10, 100].map((n) => backoffDelay(policy, n, () => 1));
    assert.deepEqual(low, [50, 100, 200, 400, 500, 500, 500]);
    assert.deepEqual(high, [100, 200, 400, 800, 1000, 1000, 1000]);
  });
  it("resets after a success", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 1);
    assert.deepEqual([b.next(), b.next(), b.next()], [100, 200, 400]);
    b.reset();
    assert.equal(b.next(), 100);
  });
});

describe("parseWatchEvent", () => {
  const obj = { metadata: { name: "a", namespace: "prod", resourceVersion: "7", generation: 2 } };
  const rows: [string, string, string][] = [
    ["ADDED", JSON.stringify({ type: "ADDED", object: obj }), "ADDED prod/a 7 2"],
    ["DELETED", JSON.stringify({ type: "DELETED", object: obj }), "DELETED prod/a 7 2"],
    ["BOOKMARK", '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}', "BOOKMARK 9"],
    [
      "ERROR 410",
      '{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410,"message":"too old"}}',
      "ERROR 410 Expired",
    ],
    ["not JSON", "{", "invalid"],
    ["an array", "[]", "invalid"],
    ["no object", '{"type":"ADDED"}', "invalid"],
    [
      "no resourceVersion",
      '{"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"b"}}}',
      "invalid",
    ],
    ["an unknown type", '{"type":"SYNC","object":{}}', "invalid"],
    ["a bookmark without rv", '{"type":"BOOKMARK","object":{}}', "invalid"],
  ];
  for (const [what, line, want] of rows) {
    it(`${what} → ${want}`, () => {
      const e = parseWatchEvent(line);
      const got =
        e.type === "invalid"
          ? "invalid"
          : e.type === "BOOKMARK"
            ? `BOOKMARK ${e.resourceVersion}`
            : e.type === "ERROR"
              ? `ERROR ${e.status.code} ${e.status.reason}`
              : `${e.type} ${e.object.key} ${e.object.resourceVersion} ${e.object.generation}`;
      assert.equal(got, want);
    });
  }
});
