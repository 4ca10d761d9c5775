/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return --
   manifests are untyped YAML, read the way kubectl reads them */
// The Kubernetes manifests, examples and Helm chart: everything that can be checked without a
// cluster, helm or Docker (none can run here). Each claim the README makes about them is a row.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { parse, parseAllDocuments } from "yaml";
import { serveConfig } from "../../src/config.ts";
import { SCOPE_LIMITS } from "../../src/domain/scope.ts";
import { reviewAdmission } from "../../src/kube/admission.ts";
import { CRD_FILE, crdValidator, loadCrd, schemaNodes } from "../harness/crd-schema.ts";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHART = join(ROOT, "charts", "tokenscope");
const HOUR = 3_600_000;

function filesUnder(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => ext.test(f))
    .map((f) => join(dir, f))
    .sort();
}

function docsOf(file: string): Json[] {
  return parseAllDocuments(readFileSync(file, "utf8"))
    .map((d) => d.toJS() as Json | null)
    .filter((d): d is Json => d !== null);
}

function one(file: string, kind: string): Json {
  const found = docsOf(join(ROOT, file)).filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in ${file}`);
  return found[0] as Json;
}

function createReview(obj: Json): Json {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "5b0c1e7e-0000-4000-8000-000000000001",
      kind: { group: "tokenscope.dev", version: "v1alpha1", kind: "TokenScope" },
      operation: "CREATE",
      namespace: obj.metadata?.namespace,
      name: obj.metadata?.name,
      object: obj,
      oldObject: null,
      dryRun: false,
    },
  };
}

function admit(obj: Json, capHours = 2160) {
  const outcome = reviewAdmission(createReview(obj), { maxTTLCapMs: capHours * HOUR });
  assert.ok(outcome.ok, "a well-formed review");
  return outcome.review.response;
}

const validateScope = crdValidator();
function schemaErrors(obj: Json): string {
  return validateScope(obj)
    ? ""
    : (validateScope.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`).join("; ");
}

describe("every YAML file parses", () => {
  const files = [
    ...filesUnder(join(ROOT, "deploy"), /\.ya?ml$/),
    ...filesUnder(CHART, /\.ya?ml$/).filter((f) => !f.includes(`${CHART}/templates/`)),
  ];
  it("finds the manifests, the examples and the chart's files", () => {
    assert.ok(files.length >= 30, `${files.length} files`);
  });
  for (const file of files) {
    it(relative(ROOT, file), () => {
      const docs = parseAllDocuments(readFileSync(file, "utf8"));
      for (const doc of docs) assert.deepEqual(doc.errors, [], file);
      for (const doc of docsOf(file)) {
        if (doc.kind !== "ConfigMap") continue;
        for (const [key, text] of Object.entries(doc.data ?? {})) {
          if (key.endsWith(".yaml")) assert.doesNotThrow(() => parse(text as string), key);
        }
      }
    });
  }
});

describe("the TokenScope CRD", () => {
  const crd = loadCrd();
  const version = crd.spec.versions[0];
  assert.ok(version);
  const root = version.schema.openAPIV3Schema;
  const nodes = [...schemaNodes(root)];
  const node = (path: string) => nodes.find(([p]) => p === path)?.[1];

  it("is tokenscopes.tokenscope.dev v1alpha1, namespaced, short name tks, category tokenscope", () => {
    assert.equal(crd.spec.group, "tokenscope.dev");
    assert.equal(crd.spec.scope, "Namespaced");
    assert.equal(version.name, "v1alpha1");
    assert.deepEqual(crd.spec.names.shortNames, ["tks"]);
    assert.deepEqual(crd.spec.names.categories, ["tokenscope"]);
    assert.deepEqual(version.subresources, { status: {} });
  });

  it("prints Owner, Mode, Ready (from the Ready condition) and Age", () => {
    const columns = Object.fromEntries(
      (version.additionalPrinterColumns ?? []).map((c) => [c.name, c.jsonPath]),
    );
    assert.equal(columns.Owner, ".spec.owner");
    assert.equal(columns.Mode, ".spec.mode");
    assert.equal(columns.Ready, '.status.conditions[?(@.type=="Ready")].status');
    assert.equal(columns.Age, ".metadata.creationTimestamp");
  });

  it("describes every field, for kubectl explain", () => {
    const missing = nodes
      .filter(([path]) => path !== ".metadata" && !path.endsWith("[]"))
      .filter(([, n]) => typeof n.description !== "string" || n.description.length < 10)
      .map(([path]) => path || "<root>");
    assert.deepEqual(missing, []);
  });

  it("bounds every list and every string a CEL rule reads, and gives every rule a message", () => {
    for (const [path, n] of nodes) {
      if (n.type === "array") assert.equal(typeof n.maxItems, "number", `${path} maxItems`);
      const rules = (n["x-kubernetes-validations"] ?? []) as { rule: string; message?: string }[];
      if (rules.length > 0 && n.type === "string") {
        assert.equal(typeof n.maxLength, "number", `${path} maxLength`);
      }
      for (const r of rules) assert.ok(r.message && r.message.length > 5, `${path}: ${r.rule}`);
    }
  });

  // [schema path, the bound, what the domain allows]
  const limitRows: [string, string, number][] = [
    [".spec.rules", "maxItems", SCOPE_LIMITS.rules],
    [".spec.rules[].hosts", "maxItems", SCOPE_LIMITS.hosts],
    [".spec.rules[].paths", "maxItems", SCOPE_LIMITS.paths],
    [".spec.rules[].methods", "maxItems", SCOPE_LIMITS.methods],
    [".spec.sources.cidrs", "maxItems", SCOPE_LIMITS.cidrs],
    [".spec.sources.principals", "maxItems", SCOPE_LIMITS.principals],
    [".spec.owner", "maxLength", 253],
    [".spec.rules[].paths[]", "maxLength", 1024],
    [".spec.rules[].methods[]", "maxLength", 32],
    [".spec.sources.principals[]", "maxLength", 2048],
    [".spec.sources.cidrs[]", "maxLength", 49], // the longest IPv6 text (45) and "/128"
  ];
  for (const [path, bound, limit] of limitRows) {
    it(`${path} ${bound} is the domain's limit (${limit})`, () => {
      assert.equal(node(path)?.[bound], limit);
    });
  }

  it("defaults mode to Enforce and allows only Enforce and DryRun", () => {
    assert.deepEqual(node(".spec.mode")?.enum, ["Enforce", "DryRun"]);
    assert.equal(node(".spec.mode")?.default, "Enforce");
  });

  it("is byte-identical in the Helm chart's crds/", () => {
    const chartCrd = readFileSync(join(CHART, "crds", "tokenscopes.tokenscope.dev.yaml"));
    assert.ok(
      chartCrd.equals(readFileSync(CRD_FILE)),
      "charts/tokenscope/crds differs from deploy/crds",
    );
  });
});

describe("example TokenScopes", () => {
  const files = filesUnder(join(ROOT, "deploy", "examples"), /\.ya?ml$/).filter(
    (f) => !f.includes("/invalid/"),
  );
  const scopes = files.flatMap((f) =>
    docsOf(f)
      .filter((d) => d.kind === "TokenScope")
      .map((d) => [relative(ROOT, f), d] as const),
  );
  it("include scopes for prod and staging", () => {
    const namespaces = new Set(scopes.map(([, d]) => d.metadata.namespace));
    assert.ok(namespaces.has("prod") && namespaces.has("staging"), [...namespaces].join());
  });
  for (const [file, scope] of scopes) {
    it(`${file} (${scope.metadata.namespace}/${scope.metadata.name}) fits the CRD schema and passes the webhook`, () => {
      assert.equal(schemaErrors(scope), "");
      const response = admit(scope);
      assert.equal(response.allowed, true, response.status?.message);
    });
  }
});

describe("documented invalid TokenScopes", () => {
  const files = filesUnder(join(ROOT, "deploy", "examples", "invalid"), /\.yaml$/);
  it("there are some, each of every kind of refusal", () => {
    const claims = files.map((f) => readFileSync(f, "utf8"));
    for (const who of ["schema", "cel", "webhook"]) {
      assert.ok(
        claims.some((text) => new RegExp(`^# refused-by:.*\\b${who}\\b`, "m").test(text)),
        who,
      );
    }
  });
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const refusedBy = (/^# refused-by: (.+)$/m.exec(text)?.[1] ?? "").split(/,\s*/);
    const field = /^# field: (.+)$/m.exec(text)?.[1] ?? "";
    const scope = parse(text) as Json;
    const name = relative(ROOT, file);
    it(`${name} is refused by ${refusedBy.join(" and ")}, at ${field}`, () => {
      assert.ok(field, "the file names the field");
      const errors = schemaErrors(scope);
      if (refusedBy.includes("schema")) assert.notEqual(errors, "", "the schema refuses it");
      else assert.equal(errors, "", "only CEL or the webhook can see this problem");
      const response = admit(scope);
      if (refusedBy.includes("webhook")) {
        assert.equal(response.allowed, false);
        const fields = response.status?.details.causes.map((c) => c.field) ?? [];
        assert.ok(fields.includes(field), `${field} in ${fields.join(", ")}`);
      }
    });
  }
  it("the webhook accepts a god-level scope once annotated allow-broad", () => {
    const scope = parse(readFileSync(join(ROOT, "deploy/examples/invalid/god-level.yaml"), "utf8"));
    scope.metadata.annotations = { "tokenscope.dev/allow-broad": "true" };
    const response = admit(scope);
    assert.equal(response.allowed, true);
    assert.ok(response.warnings?.some((w) => w.includes("any path with any method")));
  });
});

describe("Helm values", () => {
  const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8"));
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
  });
  const validate = ajv.compile(schema);
  const values = parse(readFileSync(join(CHART, "values.yaml"), "utf8")) as Json;
  const errors = (v: unknown) =>
    validate(v)
      ? ""
      : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`).join("; ");

  it("values.yaml validates against values.schema.json", () => {
    assert.equal(errors(values), "");
  });

  // [what, edit, valid?]
  const rows: [string, (v: Json) => void, boolean][] = [
    ["an uppercase environment", (v) => (v.environment = "PROD"), false],
    ["an unknown Redis mode", (v) => (v.redis.mode = "memcached"), false],
    ["a misspelt top-level key", (v) => (v.replicas = 3), false],
    ["zero replicas", (v) => (v.replicaCount = 0), false],
    ["a maxTTLCap that is not a duration", (v) => (v.maxTTLCap = "90 days"), false],
    ["a password inside redis.url", (v) => (v.redis.url = "redis://:secret@redis:6379"), false],
    [
      "provided certificates without their Secret",
      (v) => (v.webhook.certificates.source = "provided"),
      false,
    ],
    [
      "provided certificates with Secret and CA",
      (v) => {
        v.webhook.certificates.source = "provided";
        v.webhook.certificates.provided = { secretName: "tls", caBundle: "TUlJQg==" };
      },
      true,
    ],
    [
      "Sentinel nodes",
      (v) => {
        v.redis.mode = "sentinel";
        v.redis.sentinel.nodes = ["sentinel-0.redis:26379", "sentinel-1.redis:26379"];
      },
      true,
    ],
    ["a Redis URL", (v) => (v.redis.url = "rediss://redis.redis.svc:6379/0"), true],
  ];
  for (const [what, edit, valid] of rows) {
    it(`${valid ? "accepts" : "refuses"} ${what}`, () => {
      const v = structuredClone(values);
      edit(v);
      if (valid) assert.equal(errors(v), "");
      else assert.notEqual(errors(v), "");
    });
  }

  it("every template closes each if/with/range/define it opens, in order", () => {
    for (const file of filesUnder(join(CHART, "templates"), /\.(yaml|tpl|txt)$/)) {
      const text = readFileSync(file, "utf8").replaceAll(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, "");
      let depth = 0;
      for (const m of text.matchAll(/\{\{-?\s*(if|with|range|define|end)\b/g)) {
        depth += m[1] === "end" ? -1 : 1;
        assert.ok(depth >= 0, `${relative(CHART, file)}: an end without a block`);
      }
      assert.equal(depth, 0, `${relative(CHART, file)}: unclosed blocks`);
    }
  });

  it("every .Values path the templates read exists in values.yaml", () => {
    const missing: string[] = [];
    for (const file of filesUnder(join(CHART, "templates"), /\.(yaml|tpl|txt)$/)) {
      for (const m of readFileSync(file, "utf8").matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) {
        let at: unknown = values;
        for (const key of (m[1] ?? "").split(".")) {
          at =
            at !== null && typeof at === "object" && Object.hasOwn(at, key)
              ? (at as Json)[key]
              : undefined;
          if (at === undefined) break;
        }
        if (at === undefined) missing.push(`${relative(CHART, file)}: ${m[1] ?? ""}`);
      }
    }
    assert.deepEqual(missing, []);
  });
});

describe("RBAC is least privilege", () => {
  const expected = [
    { apiGroups: ["tokenscope.dev"], resources: ["tokenscopes"], verbs: ["get", "list", "watch"] },
    { apiGroups: ["tokenscope.dev"], resources: ["tokenscopes/status"], verbs: ["patch"] },
  ];
  it("the ClusterRole grants tokenscopes get/list/watch and tokenscopes/status patch, nothing else", () => {
    assert.deepEqual(one("deploy/rbac.yaml", "ClusterRole").rules, expected);
  });
  it("the sidecar example's Role grants the same, in its namespace only", () => {
    assert.deepEqual(
      one("deploy/examples/sidecar/reports-with-tokenscope.yaml", "Role").rules,
      expected,
    );
  });
  it("the chart's role template grants the same", () => {
    const text = readFileSync(join(CHART, "templates", "rbac.yaml"), "utf8");
    const rules = /^rules:\n([\s\S]*?)^---$/m.exec(text)?.[1] ?? "";
    assert.deepEqual(parse(rules), expected);
  });
  it("no other manifest under deploy/ grants anything", () => {
    const grants = filesUnder(join(ROOT, "deploy"), /\.ya?ml$/).flatMap((f) =>
      docsOf(f)
        .filter((d) => d.kind === "Role" || d.kind === "ClusterRole")
        .map((d) => `${relative(ROOT, f)}: ${d.kind as string}`),
    );
    assert.deepEqual(grants, [
      "deploy/examples/sidecar/reports-with-tokenscope.yaml: Role",
      "deploy/rbac.yaml: ClusterRole",
      "deploy/sidecar-injection/namespace-rbac.yaml: Role",
    ]);
  });
});

describe("the deployment", () => {
  const deployment = one("deploy/deployment.yaml", "Deployment");
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const service = one("deploy/service.yaml", "Service");
  const webhook = one("deploy/webhook.yaml", "ValidatingWebhookConfiguration");
  const certificates = docsOf(join(ROOT, "deploy/certificate.yaml")).filter(
    (d) => d.kind === "Certificate",
  );
  const namespace = deployment.metadata.namespace;
  const mountOf = (volume: string) =>
    container.volumeMounts.find((m: Json) => m.name === volume)?.mountPath as string;
  const secretOf = (volume: string) =>
    pod.volumes.find((v: Json) => v.name === volume)?.secret?.secretName as string;

  it("runs serve with flags that tokenscope accepts, scopes from Kubernetes and the webhook on", () => {
    assert.equal(container.args[0], "serve");
    const config = serveConfig(container.args.slice(1), { REDIS_URL: "redis://redis:6379" });
    assert.equal(config.scopes, "kubernetes");
    assert.equal(config.redisUrl, "redis://redis:6379");
    assert.equal(config.environment, "prod");
    assert.ok(config.webhook);
    assert.equal(config.webhook.port, 9443);
    assert.ok(config.webhook.certFile.startsWith(`${mountOf("webhook-tls")}/`));
    assert.ok(config.hmacKeyFile?.startsWith(`${mountOf("hmac-key")}/`));
    const redis = container.env.find((e: Json) => e.name === "REDIS_URL");
    assert.deepEqual(redis.valueFrom.secretKeyRef, { name: "tokenscope-redis", key: "url" });
  });

  it("is hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp", () => {
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.deepEqual(container.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
  });

  it("is highly available: 2+ replicas, spread, PDB, HPA from 2, probes on /readyz and /healthz", () => {
    assert.ok(deployment.spec.replicas >= 2);
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
    assert.ok(pod.topologySpreadConstraints.length >= 2);
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    assert.ok(container.resources.requests.cpu && container.resources.limits.memory);
    const labels = deployment.spec.template.metadata.labels;
    const pdb = one("deploy/pdb.yaml", "PodDisruptionBudget");
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(labels[k], v);
    const hpa = one("deploy/hpa.yaml", "HorizontalPodAutoscaler");
    assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
    assert.ok(hpa.spec.minReplicas >= 2);
  });

  it("exposes gRPC 9001, metrics 9090 and the webhook 9443 through the Service", () => {
    const ports = Object.fromEntries(container.ports.map((p: Json) => [p.name, p.containerPort]));
    assert.deepEqual(ports, { grpc: 9001, "http-metrics": 9090, webhook: 9443 });
    for (const p of service.spec.ports) assert.ok(p.targetPort in ports, p.name);
    for (const [k, v] of Object.entries(service.spec.selector)) {
      assert.equal(deployment.spec.template.metadata.labels[k], v);
    }
    assert.equal(container.readinessProbe.httpGet.port, "http-metrics");
  });

  it("registers the webhook: fail closed, no side effects, short timeout, v1, not in its own namespace", () => {
    const [hook, ...others] = webhook.webhooks;
    assert.equal(others.length, 0);
    assert.equal(hook.failurePolicy, "Fail");
    assert.equal(hook.sideEffects, "None");
    assert.ok(hook.timeoutSeconds <= 10);
    assert.deepEqual(hook.admissionReviewVersions, ["v1"]);
    assert.deepEqual(hook.clientConfig.service, {
      name: service.metadata.name,
      namespace,
      path: "/validate",
      port: 443,
    });
    assert.deepEqual(hook.rules, [
      {
        apiGroups: ["tokenscope.dev"],
        apiVersions: ["v1alpha1"],
        operations: ["CREATE", "UPDATE"],
        resources: ["tokenscopes"],
        scope: "Namespaced",
      },
    ]);
    assert.deepEqual(hook.namespaceSelector.matchExpressions, [
      { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [namespace] },
    ]);
  });

  it("gets its certificate from cert-manager, the CA injected from the same Certificate", () => {
    const inject = webhook.metadata.annotations["cert-manager.io/inject-ca-from"];
    const serving = certificates.find(
      (c) => `${c.metadata.namespace}/${c.metadata.name}` === inject,
    );
    assert.ok(serving, `Certificate ${inject as string}`);
    assert.equal(serving.spec.secretName, secretOf("webhook-tls"));
    assert.ok(serving.spec.dnsNames.includes(`${service.metadata.name}.${namespace}.svc`));
  });

  it("kustomization.yaml lists every manifest in deploy/", () => {
    const kustomization = parse(readFileSync(join(ROOT, "deploy/kustomization.yaml"), "utf8"));
    const top = readdirSync(join(ROOT, "deploy")).filter(
      (f) => f.endsWith(".yaml") && f !== "kustomization.yaml",
    );
    const listed = kustomization.resources as string[];
    for (const f of [...top, "crds/tokenscopes.tokenscope.dev.yaml"])
      assert.ok(listed.includes(f), f);
    for (const f of listed) assert.ok(existsSync(join(ROOT, "deploy", f)), f);
  });

  it("kubectl kustomize renders deploy/ (when kubectl is installed)", (t) => {
    let out: string;
    try {
      out = execFileSync("kubectl", ["kustomize", join(ROOT, "deploy")], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 60_000,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        t.skip("kubectl is not installed");
        return;
      }
      throw err;
    }
    const kinds = parseAllDocuments(out).map((d) => (d.toJS() as Json).kind as string);
    for (const kind of [
      "CustomResourceDefinition",
      "Deployment",
      "ValidatingWebhookConfiguration",
    ]) {
      assert.ok(kinds.includes(kind), kind);
    }
  });
});

describe("mesh examples", () => {
  it("Istio: an envoyExtAuthzGrpc provider that fails closed with a timeout, used by a CUSTOM policy", () => {
    const operator = one("deploy/examples/istio/mesh-config.yaml", "IstioOperator");
    const [provider] = operator.spec.meshConfig.extensionProviders;
    assert.equal(provider.envoyExtAuthzGrpc.failOpen, false);
    assert.match(provider.envoyExtAuthzGrpc.timeout, /^\d+(\.\d+)?s$/);
    assert.equal(provider.envoyExtAuthzGrpc.service, "tokenscope.tokenscope.svc.cluster.local");
    assert.equal(provider.envoyExtAuthzGrpc.port, 9001);
    const policy = one("deploy/examples/istio/authorization-policy.yaml", "AuthorizationPolicy");
    assert.equal(policy.spec.action, "CUSTOM");
    assert.equal(policy.spec.provider.name, provider.name);
  });

  it("plain Envoy: ext_authz fails closed with a timeout, every checked route names its namespace", () => {
    const envoy = parse(readFileSync(join(ROOT, "deploy/examples/envoy/envoy.yaml"), "utf8"));
    const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    const authz = hcm.http_filters.find((f: Json) => f.name === "envoy.filters.http.ext_authz");
    assert.equal(authz.typed_config.failure_mode_allow, false);
    assert.equal(authz.typed_config.transport_api_version, "V3");
    assert.match(authz.typed_config.grpc_service.timeout, /^\d+(\.\d+)?s$/);
    const routes = hcm.route_config.virtual_hosts.flatMap((vh: Json) => vh.routes);
    for (const route of routes) {
      const per = route.typed_per_filter_config?.["envoy.filters.http.ext_authz"];
      assert.ok(
        per?.disabled === true || per?.check_settings?.context_extensions?.namespace,
        route.match.prefix,
      );
    }
    const cluster = envoy.static_resources.clusters.find((c: Json) => c.name === "tokenscope");
    const address =
      cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    assert.equal(address.port_value, 9001);
  });

  it("sidecar: --namespace from the downward API, gRPC on loopback, flags tokenscope accepts", () => {
    const deployment = one("deploy/examples/sidecar/reports-with-tokenscope.yaml", "Deployment");
    const container = deployment.spec.template.spec.containers.find(
      (c: Json) => c.name === "tokenscope",
    );
    const env = container.env.find((e: Json) => e.name === "POD_NAMESPACE");
    assert.equal(env.valueFrom.fieldRef.fieldPath, "metadata.namespace");
    assert.ok(container.args.includes("--namespace=$(POD_NAMESPACE)"));
    // --watch-namespace belongs to the TokenScope watcher, built on another branch.
    const args = (container.args as string[])
      .slice(1)
      .filter((a) => !a.startsWith("--watch-namespace="))
      .map((a) => a.replace("$(POD_NAMESPACE)", "prod"));
    const config = serveConfig(args, {});
    assert.equal(config.namespace, "prod");
    assert.equal(config.grpcAddr, "127.0.0.1:9001");
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  });
});
