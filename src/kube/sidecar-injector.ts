// Sidecar injection (MutatingAdmissionWebhook, /mutate): a Pod created in a namespace labelled
// tokenscope.dev/injection=enabled gets a tokenscope container beside its Envoy. Pure:
// AdmissionReview in, AdmissionReview out with a JSONPatch. The namespace label is matched by the
// webhook configuration's namespaceSelector; this code decides per pod (opt-out annotation,
// already injected, port clash). It never fails a pod creation: anything it cannot read is
// allowed unchanged, with a warning.

export const INJECT_ANNOTATION = "tokenscope.dev/inject";
export const STATUS_ANNOTATION = "tokenscope.dev/status";
export const SIDECAR_NAME = "tokenscope";
export const HMAC_VOLUME = "tokenscope-hmac-key";

export interface InjectionConfig {
  readonly image: string;
  readonly imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  readonly environment: string;
  /** Secret and key holding the Redis URL (never a literal value in the pod spec). */
  readonly redisUrlSecret: { readonly name: string; readonly key: string };
  /** Secret holding the HMAC key under the key "hmac.key". */
  readonly hmacKeySecret: string;
  /** The installation's --redis-prefix: a sidecar must read the same keys. */
  readonly redisPrefix: string;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly resources: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export const DEFAULT_INJECTION: InjectionConfig = {
  image: "tokenscope:0.1.0",
  imagePullPolicy: "IfNotPresent",
  environment: "prod",
  redisUrlSecret: { name: "tokenscope-redis", key: "url" },
  hmacKeySecret: "tokenscope-hmac-key",
  redisPrefix: "{tokenscope}:",
  grpcPort: 9001,
  metricsPort: 9090,
  resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
};

export interface PatchOp {
  readonly op: "add";
  readonly path: string;
  readonly value: unknown;
}

export interface MutationResponse {
  readonly uid: string;
  readonly allowed: true;
  readonly patchType?: "JSONPatch";
  /** base64 of the JSONPatch document, as AdmissionReview v1 carries it. */
  readonly patch?: string;
  readonly warnings?: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** JSON Pointer (RFC 6901) escaping of one path segment. */
const pointer = (segment: string) => segment.replaceAll("~", "~0").replaceAll("/", "~1");

export function sidecarContainer(cfg: InjectionConfig): Obj {
  return {
    name: SIDECAR_NAME,
    image: cfg.image,
    imagePullPolicy: cfg.imagePullPolicy,
    args: [
      "serve",
      // Envoy in the same pod is the only caller: loopback only, no network hop.
      `--grpc-addr=127.0.0.1:${cfg.grpcPort}`,
      `--http-addr=0.0.0.0:${cfg.metricsPort}`,
      "--scopes=kubernetes",
      // Authoritative destination namespace (SPEC §4), and a watch of this namespace only.
      "--namespace=$(POD_NAMESPACE)",
      "--watch-namespace=$(POD_NAMESPACE)",
      `--environment=${cfg.environment}`,
      "--hmac-key-file=/etc/tokenscope/hmac/hmac.key",
      `--redis-prefix=${cfg.redisPrefix}`,
      // One process: a sidecar serves one pod's Envoy, and its CPU request is small.
      "--workers=1",
    ],
    env: [
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      {
        name: "REDIS_URL",
        valueFrom: { secretKeyRef: { name: cfg.redisUrlSecret.name, key: cfg.redisUrlSecret.key } },
      },
    ],
    ports: [{ name: "ts-metrics", containerPort: cfg.metricsPort, protocol: "TCP" }],
    readinessProbe: {
      httpGet: { path: "/readyz", port: cfg.metricsPort },
      periodSeconds: 5,
      failureThreshold: 2,
    },
    livenessProbe: {
      httpGet: { path: "/healthz", port: cfg.metricsPort },
      periodSeconds: 10,
      failureThreshold: 3,
    },
    resources: cfg.resources,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [{ name: HMAC_VOLUME, mountPath: "/etc/tokenscope/hmac", readOnly: true }],
  };
}

/** Why this pod is left alone, or undefined to inject. */
function skipReason(pod: Obj, cfg: InjectionConfig): string | undefined {
  const meta = isObj(pod.metadata) ? pod.metadata : {};
  const annotations = isObj(meta.annotations) ? meta.annotations : {};
  if (annotations[INJECT_ANNOTATION] === "false") return "opted out";
  const spec = isObj(pod.spec) ? pod.spec : undefined;
  if (!spec || !Array.isArray(spec.containers)) return "the pod has no spec.containers";
  const containers = spec.containers.filter(isObj);
  if (
    annotations[STATUS_ANNOTATION] === "injected" ||
    containers.some((c) => c.name === SIDECAR_NAME)
  ) {
    return "already injected";
  }
  const used = containers.flatMap((c) => (Array.isArray(c.ports) ? c.ports.filter(isObj) : []));
  for (const port of [cfg.grpcPort, cfg.metricsPort]) {
    if (used.some((p) => p.containerPort === port))
      return `port ${port} is already used in the pod`;
  }
  if (Array.isArray(spec.volumes) && spec.volumes.some((v) => isObj(v) && v.name === HMAC_VOLUME)) {
    return `a volume named ${HMAC_VOLUME} already exists`;
  }
  return undefined;
}

export function injectionPatch(pod: Obj, cfg: InjectionConfig): PatchOp[] {
  const meta = isObj(pod.metadata) ? pod.metadata : {};
  const spec = pod.spec as Obj;
  const volume = {
    name: HMAC_VOLUME,
    secret: { secretName: cfg.hmacKeySecret, defaultMode: 0o440 },
  };
  const added: Record<string, string> = {
    [STATUS_ANNOTATION]: "injected",
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(cfg.metricsPort),
    "prometheus.io/path": "/metrics",
  };
  const ops: PatchOp[] = [{ op: "add", path: "/spec/containers/-", value: sidecarContainer(cfg) }];
  ops.push(
    Array.isArray(spec.volumes)
      ? { op: "add", path: "/spec/volumes/-", value: volume }
      : { op: "add", path: "/spec/volumes", value: [volume] },
  );
  if (!isObj(meta.annotations)) {
    ops.push({ op: "add", path: "/metadata/annotations", value: added });
  } else {
    const existing = meta.annotations;
    for (const [k, v] of Object.entries(added)) {
      // The app's own scrape settings win: it may already export metrics on another port.
      if (k.startsWith("prometheus.io/") && k in existing) continue;
      ops.push({ op: "add", path: `/metadata/annotations/${pointer(k)}`, value: v });
    }
  }
  return ops;
}

/** The AdmissionReview response for a /mutate request; never a failure. */
export function reviewPodInjection(
  body: unknown,
  cfg: InjectionConfig,
): { response: MutationResponse; injected: boolean } {
  const request = isObj(body) && isObj(body.request) ? body.request : undefined;
  const uid = typeof request?.uid === "string" ? request.uid : "";
  const leave = (warning?: string) => ({
    response: {
      uid,
      allowed: true as const,
      ...(warning ? { warnings: [`tokenscope: ${warning}`] } : {}),
    },
    injected: false,
  });
  if (!isObj(body) || body.kind !== "AdmissionReview" || !request || uid === "") {
    return leave("not an AdmissionReview v1 request; the pod is admitted without a sidecar");
  }
  const kind = isObj(request.kind) ? request.kind : {};
  if (kind.kind !== "Pod" || request.operation !== "CREATE") return leave();
  const pod = request.object;
  if (!isObj(pod)) return leave("the review carries no pod; admitted without a sidecar");
  const why = skipReason(pod, cfg);
  if (why === "opted out" || why === "already injected") return leave();
  if (why !== undefined) return leave(`no sidecar injected: ${why}`);
  const patch = Buffer.from(JSON.stringify(injectionPatch(pod, cfg))).toString("base64");
  return { response: { uid, allowed: true, patchType: "JSONPatch", patch }, injected: true };
}
