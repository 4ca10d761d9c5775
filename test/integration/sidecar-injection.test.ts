// Sidecar mode end to end: the real server's /mutate over HTTPS, the MutatingWebhookConfiguration's
// namespaceSelector evaluated as the API server would (deciding whether the webhook is called at
// all), and a server started exactly as the injected container starts (its args and env, against
// the test Kubernetes API server and a real redis-server), which denies another namespace's token
// with namespace_mismatch whatever the request says.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import jsonpatch from "fast-json-patch";
import { serveConfig } from "../../src/config.ts";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { DEFAULT_INJECTION, reviewPodInjection } from "../../src/kube/sidecar-injector.ts";
import { serve, type RunningServer } from "../../src/main.ts";
import { checkClient } from "../harness/check-client.ts";
import { httpsRequest } from "../harness/https-client.ts";
import { TestKubeApi } from "../harness/kube-api.ts";
import { eventually, READ_SPEC, readyz, tokenScope } from "../harness/kube-fixtures.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import {
  memoryLogger,
  openServerBackends,
  startTestServer,
  tempDir,
  writeHmacKey,
  type TestServer,
} from "../harness/server.ts";
import { makeCertificate } from "../harness/tls.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const FIXTURE = new URL("../fixtures/pod-injection/pod-create.json", import.meta.url);

interface Container {
  name: string;
  args: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
}
interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Kubernetes label-selector semantics (In, NotIn, Exists, DoesNotExist; matchLabels). */
function selects(selector: Selector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {}))
    if (labels[k] !== v) return false;
  return (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    const has = key in labels;
    const value = labels[key] ?? "";
    if (operator === "In") return has && values.includes(value);
    if (operator === "NotIn") return !has || !values.includes(value);
    if (operator === "Exists") return has;
    if (operator === "DoesNotExist") return !has;
    throw new Error(`unknown operator ${operator}`);
  });
}

function injectedPod(): { containers: Container[] } {
  const body = JSON.parse(readFileSync(FIXTURE, "utf8")) as { request: { object: object } };
  const { response } = reviewPodInjection(body, DEFAULT_INJECTION);
  const patch = JSON.parse(
    Buffer.from(response.patch ?? "", "base64").toString(),
  ) as jsonpatch.Operation[];
  const pod = jsonpatch.applyPatch(
    structuredClone(body.request.object),
    patch,
    true,
    false,
  ).newDocument;
  return (pod as { spec: { containers: Container[] } }).spec;
}

describe("the mutating webhook over HTTPS", () => {
  let server: TestServer;
  let ca: Buffer;
  before(async () => {
    const dir = tempDir("mutate");
    const cert = makeCertificate(dir, "webhook");
    ca = cert.cert;
    server = await startTestServer({
      extraArgs: [
        "--webhook-addr=127.0.0.1:0",
        `--webhook-cert-file=${cert.certFile}`,
        `--webhook-key-file=${cert.keyFile}`,
        "--sidecar-image=registry.example/tokenscope:0.1.0",
      ],
    });
  });
  after(() => server.stop());

  it("a Pod CREATE gets the sidecar patch; the image is the installation's", async () => {
    const reply = await httpsRequest({
      port: server.webhookPort ?? 0,
      ca,
      path: "/mutate",
      body: readFileSync(FIXTURE),
    });
    assert.equal(reply.status, 200);
    const review = JSON.parse(reply.body) as {
      response: { allowed: boolean; patch?: string; patchType?: string };
    };
    assert.equal(review.response.allowed, true);
    assert.equal(review.response.patchType, "JSONPatch");
    const ops = JSON.parse(Buffer.from(review.response.patch ?? "", "base64").toString()) as {
      path: string;
      value: { image?: string };
    }[];
    assert.equal(
      ops.find((o) => o.path === "/spec/containers/-")?.value.image,
      "registry.example/tokenscope:0.1.0",
    );
  });

  it("a body that is not even JSON is admitted (200, allowed) with a warning, never failed", async () => {
    const reply = await httpsRequest({
      port: server.webhookPort ?? 0,
      ca,
      path: "/mutate",
      body: "{nope",
    });
    assert.equal(reply.status, 200);
    const review = JSON.parse(reply.body) as {
      response: { allowed: boolean; warnings?: string[]; patch?: string };
    };
    assert.equal(review.response.allowed, true);
    assert.equal(review.response.patch, undefined);
    assert.match(review.response.warnings?.[0] ?? "", /not an AdmissionReview/);
  });
});

describe("which namespaces the API server sends to /mutate", () => {
  const configs = [join(ROOT, "deploy/sidecar-injection/mutating-webhook.yaml")].flatMap((f) =>
    parseAllDocuments(readFileSync(f, "utf8")).map(
      (d) =>
        d.toJS() as {
          webhooks: { namespaceSelector: Selector; failurePolicy: string; sideEffects: string }[];
        },
    ),
  );
  const hook = configs[0]?.webhooks[0];
  const rows: [string, Record<string, string>, boolean][] = [
    [
      "a labelled namespace",
      { "kubernetes.io/metadata.name": "prod", "tokenscope.dev/injection": "enabled" },
      true,
    ],
    ["an unlabelled namespace", { "kubernetes.io/metadata.name": "prod" }, false],
    [
      "a namespace labelled disabled",
      { "kubernetes.io/metadata.name": "dev", "tokenscope.dev/injection": "disabled" },
      false,
    ],
    [
      "tokenscope's own namespace, even labelled",
      { "kubernetes.io/metadata.name": "tokenscope", "tokenscope.dev/injection": "enabled" },
      false,
    ],
  ];
  for (const [what, labels, called] of rows) {
    it(`${what}: ${called ? "injected" : "never reaches the webhook, so no patch"}`, () => {
      assert.ok(hook);
      assert.equal(selects(hook.namespaceSelector, labels), called);
    });
  }
  it("the injector can never block a pod: failurePolicy Ignore, sideEffects None", () => {
    assert.equal(hook?.failurePolicy, "Ignore");
    assert.equal(hook.sideEffects, "None");
  });
});

describe("a server started as the injected container starts", () => {
  let redis: RedisServer;
  let api: TestKubeApi;
  let sidecar: RunningServer;
  const tokens: Record<string, string> = {};
  let sidecarRequestsFrom = 0;

  before(async () => {
    redis = await startRedis();
    api = await TestKubeApi.start();
    api.apply(tokenScope("prod", "reports-read", READ_SPEC));
    api.apply(tokenScope("staging", "reports-read", READ_SPEC));
    const dir = tempDir("sidecar");
    const keyFile = writeHmacKey(dir);
    // The operator's CLI sees every namespace; tokens for both are issued in the shared Redis.
    const operator = await startTestServer({
      redisUrl: redis.url,
      scopes: "kubernetes",
      hmacKeyFile: keyFile,
      extraArgs: [`--kubeconfig=${api.kubeconfig}`, "--redis-prefix={tokenscope}:"],
    });
    const cli = await openServerBackends(operator);
    for (const ns of ["prod", "staging"]) {
      tokens[ns] = (
        await cli.tokens.issue({
          scope: `${ns}/reports-read`,
          owner: ns,
          labels: {},
          createdBy: "test",
        })
      ).token;
    }
    await cli.close();
    await operator.stop();

    const container = injectedPod().containers.find((c) => c.name === "tokenscope");
    assert.ok(container);
    assert.ok(
      container.env.every((e) => e.value === undefined),
      "env only from references",
    );
    // What the kubelet does: $(POD_NAMESPACE) from the downward API, the Secret mounted as a
    // file. Only the listen addresses and the mount path differ here (free ports, a temp dir).
    const args = container.args
      .slice(1)
      .map((a) => a.replace("$(POD_NAMESPACE)", "prod"))
      .map((a) => (a.startsWith("--hmac-key-file=") ? `--hmac-key-file=${keyFile}` : a))
      .map((a) => (a.startsWith("--grpc-addr=") ? "--grpc-addr=127.0.0.1:0" : a))
      .map((a) => (a.startsWith("--http-addr=") ? "--http-addr=127.0.0.1:0" : a));
    assert.equal(container.args[0], "serve");
    sidecarRequestsFrom = api.requests.length;
    sidecar = await serve(
      serveConfig([...args, `--kubeconfig=${api.kubeconfig}`], { REDIS_URL: redis.url }),
      memoryLogger([]),
    );
    await eventually("the sidecar ready", async () =>
      (await readyz(sidecar.httpPort)).status === 200 ? true : undefined,
    );
  });

  after(async () => {
    await sidecar.stop();
    await api.stop();
    await redis.stop();
  });

  const ask = async (token: string, claimed: Partial<Parameters<typeof buildCheckRequest>[0]>) => {
    const client = checkClient(sidecar.grpcPort);
    try {
      const res = await client.check(
        buildCheckRequest({
          token,
          method: "GET",
          path: "/v1/reports/1",
          host: "reports.prod.svc.cluster.local",
          ...claimed,
        }),
      );
      return res.status?.code === 0 ? "ok" : (res.status?.message ?? "?");
    } finally {
      client.close();
    }
  };

  it("its own namespace's token is allowed", async () => {
    assert.equal(await ask(tokens.prod ?? "", {}), "ok");
  });

  const claims: [string, Partial<Parameters<typeof buildCheckRequest>[0]>][] = [
    ["nothing", {}],
    ["context_extensions namespace staging", { namespace: "staging" }],
    [
      "a staging destination principal",
      { destinationPrincipal: "spiffe://cluster.local/ns/staging/sa/reports" },
    ],
    ["a staging x-namespace header", { extraHeaders: { "x-namespace": "staging" } }],
  ];
  for (const [what, claimed] of claims) {
    it(`a staging token is denied namespace_mismatch when the request claims ${what}`, async () => {
      assert.equal(await ask(tokens.staging ?? "", claimed), "namespace_mismatch");
    });
  }

  it("it watched its own namespace only", () => {
    const watched = api.requests
      .slice(sidecarRequestsFrom)
      .filter((r) => r.method === "GET")
      .map((r) => r.path);
    assert.ok(watched.length > 0);
    for (const path of watched) assert.match(path, /\/namespaces\/prod\/tokenscopes/);
  });
});
