// Sidecar injection from AdmissionReview fixtures: the JSONPatch is applied to the pod with a
// JSON Patch library (as the API server does) and the result checked field by field.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import jsonpatch from "fast-json-patch";
import {
  DEFAULT_INJECTION,
  reviewPodInjection,
  SIDECAR_NAME,
  type InjectionConfig,
} from "../../src/kube/sidecar-injector.ts";

// A pod is untyped JSON here, as it is to the API server; the assertions are the type checks.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-assignment */
type Obj = Record<string, any>;

const FIXTURE = new URL("../fixtures/pod-injection/pod-create.json", import.meta.url);
const review = (): Obj => JSON.parse(readFileSync(FIXTURE, "utf8")) as Obj;
const CFG: InjectionConfig = { ...DEFAULT_INJECTION, image: "registry.example/tokenscope:0.1.0" };

function mutated(body: Obj): { pod: Obj; response: Obj } {
  const { response } = reviewPodInjection(body, CFG);
  assert.equal(response.uid, body.request.uid, "uid echoed");
  assert.equal(response.allowed, true);
  const pod = structuredClone(body.request.object) as Obj;
  if (response.patch === undefined) return { pod, response };
  assert.equal(response.patchType, "JSONPatch");
  const patch = JSON.parse(
    Buffer.from(response.patch, "base64").toString(),
  ) as jsonpatch.Operation[];
  // validateOperation=true: the library refuses paths that do not exist, as the API server would.
  return { pod: jsonpatch.applyPatch(pod, patch, true, false).newDocument, response };
}

describe("sidecar injection", () => {
  it("a pod in a labelled namespace gets the tokenscope sidecar, checked field by field", () => {
    const { pod } = mutated(review());
    const containers = pod.spec.containers as Obj[];
    assert.deepEqual(
      containers.map((c) => c.name),
      ["reports", "envoy", SIDECAR_NAME],
      "the app's containers are untouched and first",
    );
    const sidecar = containers[2] ?? {};
    assert.equal(sidecar.image, "registry.example/tokenscope:0.1.0");
    assert.ok(sidecar.args.includes("--grpc-addr=127.0.0.1:9001"), "gRPC on loopback only");
    assert.ok(sidecar.args.includes("--namespace=$(POD_NAMESPACE)"));
    assert.ok(sidecar.args.includes("--watch-namespace=$(POD_NAMESPACE)"));
    assert.ok(sidecar.args.includes("--scopes=kubernetes"));
    assert.ok(sidecar.args.includes("--redis-prefix={tokenscope}:"), "the installation's keys");
    assert.ok(sidecar.args.includes("--hmac-key-file=/etc/tokenscope/hmac/hmac.key"));
    const env = Object.fromEntries((sidecar.env as Obj[]).map((e) => [e.name, e]));
    assert.deepEqual(env.POD_NAMESPACE?.valueFrom, {
      fieldRef: { fieldPath: "metadata.namespace" },
    });
    assert.deepEqual(env.REDIS_URL?.valueFrom, {
      secretKeyRef: { name: "tokenscope-redis", key: "url" },
    });
    for (const e of sidecar.env as Obj[])
      assert.equal(e.value, undefined, `${String(e.name)}: no literal values`);
    assert.deepEqual(sidecar.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    assert.equal(sidecar.readinessProbe.httpGet.path, "/readyz");
    assert.equal(sidecar.livenessProbe.httpGet.path, "/healthz");
    assert.ok(sidecar.resources.requests.cpu && sidecar.resources.limits.memory);
    assert.deepEqual(
      pod.spec.volumes.map((v: Obj) => v.name),
      ["envoy-config", "tokenscope-hmac-key"],
    );
    assert.equal(pod.spec.volumes[1].secret.secretName, "tokenscope-hmac-key");
    assert.deepEqual(sidecar.volumeMounts, [
      { name: "tokenscope-hmac-key", mountPath: "/etc/tokenscope/hmac", readOnly: true },
    ]);
    assert.equal(pod.metadata.annotations["tokenscope.dev/status"], "injected");
    assert.equal(pod.metadata.annotations["prometheus.io/scrape"], "true");
    assert.equal(pod.metadata.annotations["prometheus.io/port"], "9090");
    assert.equal(pod.metadata.annotations["kubectl.kubernetes.io/default-container"], "reports");
  });

  it("a pod without annotations or volumes gets both created", () => {
    const body = review();
    delete body.request.object.metadata.annotations;
    delete body.request.object.spec.volumes;
    const { pod } = mutated(body);
    assert.equal(pod.metadata.annotations["tokenscope.dev/status"], "injected");
    assert.deepEqual(
      pod.spec.volumes.map((v: Obj) => v.name),
      ["tokenscope-hmac-key"],
    );
  });

  it("the app's own Prometheus annotations are kept", () => {
    const body = review();
    body.request.object.metadata.annotations["prometheus.io/port"] = "8081";
    const { pod } = mutated(body);
    assert.equal(pod.metadata.annotations["prometheus.io/port"], "8081");
  });

  const untouched: [string, (b: Obj) => void, string | undefined][] = [
    [
      "an opted-out pod",
      (b) => (b.request.object.metadata.annotations["tokenscope.dev/inject"] = "false"),
      undefined,
    ],
    [
      "an already-injected pod",
      (b) => (b.request.object.metadata.annotations["tokenscope.dev/status"] = "injected"),
      undefined,
    ],
    [
      "a pod that already has a tokenscope container",
      (b) => b.request.object.spec.containers.push({ name: "tokenscope", image: "x" }),
      undefined,
    ],
    ["an UPDATE", (b) => (b.request.operation = "UPDATE"), undefined],
    [
      "a pod whose app uses the metrics port",
      (b) => (b.request.object.spec.containers[0].ports[0].containerPort = 9090),
      "port 9090 is already used",
    ],
    ["a malformed review", (b) => delete b.request.uid, "not an AdmissionReview"],
    ["a review without a pod", (b) => (b.request.object = "nope"), "carries no pod"],
  ];
  for (const [what, edit, warning] of untouched) {
    it(`${what} is admitted unchanged${warning ? ", with a warning" : ""}`, () => {
      const body = review();
      edit(body);
      const { response, injected } = reviewPodInjection(body, CFG);
      assert.equal(injected, false);
      assert.equal(response.allowed, true, "never fails the pod creation");
      assert.equal(response.patch, undefined);
      if (warning) assert.match(response.warnings?.[0] ?? "", new RegExp(warning));
      else assert.equal(response.warnings, undefined);
    });
  }

  it("dryRun gets the same patch as a real request: the preview shows the pod as it would be", () => {
    const body = review();
    body.request.dryRun = true;
    const dry = reviewPodInjection(body, CFG).response;
    body.request.dryRun = false;
    assert.equal(dry.patch, reviewPodInjection(body, CFG).response.patch);
  });

  it("injecting twice is a no-op the second time (idempotent)", () => {
    const once = mutated(review()).pod;
    const body = review();
    body.request.object = once;
    const { injected } = reviewPodInjection(body, CFG);
    assert.equal(injected, false);
  });
});
