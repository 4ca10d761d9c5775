// The only reader of process.env and argv. Flags are validated once and returned frozen.
// Every flag may also come from TOKENSCOPE_<FLAG> (dashes as underscores); the flag wins.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { usableCpus } from "./cpus.ts";
import { parseDuration } from "./domain/duration.ts";
import { isValidEnvironment } from "./domain/token.ts";
import { isNamespaceName } from "./domain/namespace.ts";
import { parseTrustedProxies } from "./http-authz/trusted-proxies.ts";
import type { CidrBlock } from "./domain/cidr.ts";
import { LOG_LEVELS, type LogLevel } from "./observability/logger.ts";
import { DEFAULT_INJECTION, type InjectionConfig } from "./kube/sidecar-injector.ts";
import { parseRedisUrl } from "./store/redis-connection.ts";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const EXAMPLE_SCOPES = join(PACKAGE_ROOT, "deploy", "examples", "scopes");

/** Flags shared by every command that touches the token store or the scopes. */
const STORE_FLAGS = {
  "redis-url": { type: "string" },
  "redis-prefix": { type: "string" },
  "redis-deadline": { type: "string" },
  "redis-min-replicas": { type: "string" },
  "data-dir": { type: "string" },
  "hmac-key-file": { type: "string" },
  environment: { type: "string" },
  scopes: { type: "string" },
  retention: { type: "string" },
  "max-ttl-cap": { type: "string" },
  "log-level": { type: "string" },
  kubeconfig: { type: "string" },
  "watch-namespace": { type: "string" },
  "kube-watch-timeout": { type: "string" },
  "audit-max-events": { type: "string" },
} as const;

const SERVE_FLAGS = {
  ...STORE_FLAGS,
  "grpc-addr": { type: "string" },
  "http-addr": { type: "string" },
  "webhook-addr": { type: "string" },
  namespace: { type: "string" },
  "audit-allow-sample": { type: "string" },
  "shutdown-grace": { type: "string" },
  "metrics-max-tokens": { type: "string" },
  "metrics-token-idle": { type: "string" },
  "expiring-soon": { type: "string" },
  "inventory-interval": { type: "string" },
  "usage-interval": { type: "string" },
  "shutdown-delay": { type: "string" },
  "http-authz-addr": { type: "string" },
  "trusted-proxies": { type: "string" },
  "kube-ready-grace": { type: "string" },
  "webhook-cert-file": { type: "string" },
  "sidecar-image": { type: "string" },
  "sidecar-redis-secret": { type: "string" },
  "sidecar-hmac-secret": { type: "string" },
  "webhook-key-file": { type: "string" },
  "cache-ttl": { type: "string" },
  "cache-negative-ttl": { type: "string" },
  "cache-max-entries": { type: "string" },
  "cache-max-bytes": { type: "string" },
  workers: { type: "string" },
} as const;

export type FlagSpec = Readonly<
  Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>
>;

export interface StoreConfig {
  readonly redisUrl: string | undefined;
  readonly redisPrefix: string;
  readonly redisDeadlineMs: number;
  /** Replicas that must confirm a revocation/rotation; undefined = the topology's default. */
  readonly redisMinReplicas: number | undefined;
  readonly dataDir: string;
  readonly hmacKeyFile: string | undefined;
  readonly environment: string;
  /** "kubernetes", or a path to a YAML file or folder. */
  readonly scopes: string;
  readonly scopesAreExamples: boolean;
  readonly retentionMs: number;
  readonly maxTTLCapMs: number;
  readonly logLevel: LogLevel;
  /** --scopes kubernetes: kubeconfig path(s), else ~/.kube/config, else in-cluster. */
  readonly kubeconfig: string | undefined;
  /** --scopes kubernetes: one namespace, or undefined for all. */
  readonly watchNamespace: string | undefined;
  /** --scopes kubernetes: the longest silence on a watch before it is relisted. */
  readonly kubeWatchTimeoutMs: number;
  /** Lifecycle events kept in the store's audit journal (Redis stream / audit.jsonl). */
  readonly auditMaxEvents: number;
}

export interface ServeConfig extends StoreConfig {
  readonly grpcAddr: string;
  readonly httpAddr: { host: string; port: number };
  readonly namespace: string | undefined;
  readonly auditAllowSample: number;
  readonly shutdownGraceMs: number;
  readonly metricsMaxTokens: number;
  readonly metricsTokenIdleMs: number;
  readonly expiringSoonMs: number;
  readonly inventoryIntervalMs: number;
  readonly usageIntervalMs: number;
  /** After SIGTERM: not ready but still answering, so endpoints drop us before we stop. */
  readonly shutdownDelayMs: number;
  /** HTTP authorization (SPEC §5b); off unless given. */
  readonly httpAuthzAddr: { host: string; port: number } | undefined;
  /** Peers whose X-Forwarded-For / X-Real-IP name the source address. */
  readonly trustedProxies: readonly CidrBlock[];
  /** --scopes kubernetes: how long the watch may be broken while still ready. */
  readonly kubeReadyGraceMs: number;
  /** The admission webhook (HTTPS), when given a certificate. */
  readonly webhook: WebhookConfig | undefined;
  readonly cache: CacheConfig;
  /** gRPC server processes (node:cluster workers); 1 = this process serves by itself. */
  readonly workers: number;
  /** NODE_OPTIONS as given: the workers' V8 flags defer to the operator's (src/cluster.ts). */
  readonly nodeOptions: string;
}

/** The in-process token cache (src/store/cached-store.ts); used with Redis only. */
export interface CacheConfig {
  /** 0 turns the cache off. */
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxEntries: number;
  readonly maxBytes: number;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export function parseFlags(
  argv: readonly string[],
  spec: FlagSpec,
  env: NodeJS.ProcessEnv,
): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = { ...parsed.values } as Values;
  for (const [name, opt] of Object.entries(spec)) {
    if (values[name] !== undefined || opt.type !== "string" || opt.multiple) continue;
    const fromEnv = env[`TOKENSCOPE_${name.toUpperCase().replaceAll("-", "_")}`];
    if (fromEnv !== undefined && fromEnv !== "") values[name] = fromEnv;
  }
  return { values, positionals: parsed.positionals };
}

export function durationFlag(values: Values, name: string, fallback: string): number {
  const text = stringFlag(values, name) ?? fallback;
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new UsageError(`--${name}: "${text}" is not a duration (e.g. 90s, 24h, 1h30m)`);
  return ms;
}

export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * The deadline of a store call when --redis-deadline is not given: short for `serve`, where a
 * request waits on it; longer for the CLI, whose operations are an operator's and take several
 * round trips (a revocation also waits for a replica's confirmation).
 */
export const CLI_REDIS_DEADLINE = "2s";

export function storeConfig(
  values: Values,
  env: NodeJS.ProcessEnv,
  defaults: { redisDeadline?: string } = {},
): StoreConfig {
  const environment = stringFlag(values, "environment") ?? "dev";
  if (!isValidEnvironment(environment)) {
    throw new UsageError(`--environment: "${environment}" must be 1–12 characters of a-z and 0-9`);
  }
  const logLevel = stringFlag(values, "log-level") ?? "info";
  if (!(LOG_LEVELS as string[]).includes(logLevel)) {
    throw new UsageError(`--log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  const redisDeadlineMs = durationFlag(values, "redis-deadline", defaults.redisDeadline ?? "100ms");
  if (redisDeadlineMs <= 0 || redisDeadlineMs > 5000) {
    throw new UsageError("--redis-deadline: must be between 1ms and 5s");
  }
  const scopesFlag = stringFlag(values, "scopes");
  const redisUrl = stringFlag(values, "redis-url") ?? (env.REDIS_URL || undefined);
  if (redisUrl !== undefined) {
    try {
      parseRedisUrl(redisUrl);
    } catch (err) {
      throw new UsageError(`--redis-url: ${(err as Error).message}`);
    }
  }
  const minReplicasText = stringFlag(values, "redis-min-replicas");
  if (minReplicasText !== undefined && !/^\d{1,2}$/.test(minReplicasText)) {
    throw new UsageError("--redis-min-replicas: must be a number of replicas (0 turns WAIT off)");
  }
  return {
    redisUrl,
    redisMinReplicas: minReplicasText === undefined ? undefined : Number(minReplicasText),
    redisPrefix: redisPrefixFlag(values, redisUrl),
    redisDeadlineMs,
    dataDir: resolve(stringFlag(values, "data-dir") ?? ".tokenscope"),
    hmacKeyFile: stringFlag(values, "hmac-key-file"),
    environment,
    scopes: scopesFlag ?? EXAMPLE_SCOPES,
    scopesAreExamples: scopesFlag === undefined,
    retentionMs: durationFlag(values, "retention", "720h"),
    maxTTLCapMs: durationFlag(values, "max-ttl-cap", "2160h"),
    logLevel: logLevel as LogLevel,
    ...kubeConfig(values, env),
  };
}

function kubeConfig(values: Values, env: NodeJS.ProcessEnv) {
  const watchNamespace = stringFlag(values, "watch-namespace");
  if (watchNamespace !== undefined && !isNamespaceName(watchNamespace)) {
    throw new UsageError(
      `--watch-namespace: "${watchNamespace}" is not a Kubernetes namespace name`,
    );
  }
  const kubeWatchTimeoutMs = durationFlag(values, "kube-watch-timeout", "2m");
  if (kubeWatchTimeoutMs < 500 || kubeWatchTimeoutMs > 3_600_000) {
    throw new UsageError("--kube-watch-timeout: must be between 500ms and 1h");
  }
  return {
    kubeconfig: stringFlag(values, "kubeconfig") ?? (env.KUBECONFIG || undefined),
    watchNamespace,
    kubeWatchTimeoutMs,
    auditMaxEvents: intFlag(values, "audit-max-events", 100_000, 100),
  };
}

export function intFlag(values: Values, name: string, fallback: number, min: number): number {
  const text = stringFlag(values, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name}: "${text}" must be a whole number of at least ${min}`);
  }
  return n;
}

function minDurationFlag(values: Values, name: string, fallback: string, minMs: number): number {
  const ms = durationFlag(values, name, fallback);
  if (ms < minMs) throw new UsageError(`--${name}: must be at least ${minMs / 1000}s`);
  return ms;
}

/**
 * The key prefix. On a Cluster it must carry a `{hash tag}`: the multi-key scripts need every
 * key in one slot, and without one every issue and rotation would fail with CROSSSLOT.
 */
function redisPrefixFlag(values: Values, redisUrl: string | undefined): string {
  const prefix = stringFlag(values, "redis-prefix") ?? "{tokenscope}:";
  if (!/^[\x21-\x7e]{1,64}$/.test(prefix)) {
    throw new UsageError("--redis-prefix: 1–64 printable characters, no spaces");
  }
  const cluster = redisUrl !== undefined && parseRedisUrl(redisUrl).topology === "cluster";
  if (cluster && !/\{[^{}]+\}/.test(prefix)) {
    throw new UsageError(
      `--redis-prefix: "${prefix}" needs a {hash tag} on a Redis Cluster, e.g. "{${prefix.replace(/:$/, "")}}:"`,
    );
  }
  return prefix;
}

export function parseHostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--${flag}: "${text}" is not HOST:PORT`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export function serveConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  const { values, positionals } = parseFlags(argv, SERVE_FLAGS, env);
  if (positionals.length > 0)
    throw new UsageError(`serve takes no arguments (got "${positionals.join(" ")}")`);
  const namespace = stringFlag(values, "namespace");
  if (namespace !== undefined && !isNamespaceName(namespace)) {
    throw new UsageError(`--namespace: "${namespace}" is not a Kubernetes namespace name`);
  }
  const sample = Number(stringFlag(values, "audit-allow-sample") ?? "1");
  if (!(sample >= 0 && sample <= 1))
    throw new UsageError("--audit-allow-sample: must be between 0 and 1");
  const grpcAddr = stringFlag(values, "grpc-addr") ?? "0.0.0.0:9001";
  const grpcParsed = parseHostPort("grpc-addr", grpcAddr);
  return Object.freeze({
    ...storeConfig(values, env),
    grpcAddr: `${grpcParsed.host.includes(":") ? `[${grpcParsed.host}]` : grpcParsed.host}:${grpcParsed.port}`,
    httpAddr: parseHostPort("http-addr", stringFlag(values, "http-addr") ?? "0.0.0.0:9090"),
    namespace,
    auditAllowSample: sample,
    shutdownGraceMs: durationFlag(values, "shutdown-grace", "10s"),
    metricsMaxTokens: intFlag(values, "metrics-max-tokens", 10_000, 1),
    metricsTokenIdleMs: minDurationFlag(values, "metrics-token-idle", "1h", 1000),
    expiringSoonMs: minDurationFlag(values, "expiring-soon", "168h", 1000),
    inventoryIntervalMs: minDurationFlag(values, "inventory-interval", "60s", 1000),
    // SPEC: at most one usage write per token per 10 s; tests may go faster, never below 1 s.
    usageIntervalMs: minDurationFlag(values, "usage-interval", "10s", 1000),
    shutdownDelayMs: durationFlag(values, "shutdown-delay", "5s"),
    httpAuthzAddr: optionalHostPort(values, "http-authz-addr"),
    trustedProxies: trustedProxiesFlag(values),
    kubeReadyGraceMs: durationFlag(values, "kube-ready-grace", "1m"),
    webhook: webhookConfig(values, storeConfig(values, env)),
    cache: cacheConfig(values),
    workers: countFlag(values, "workers", defaultWorkers(values, env), 1, 256),
    nodeOptions: env.NODE_OPTIONS ?? "",
  });
}

function optionalHostPort(values: Values, flag: string) {
  const text = stringFlag(values, flag);
  return text === undefined ? undefined : parseHostPort(flag, text);
}

function trustedProxiesFlag(values: Values): readonly CidrBlock[] {
  const parsed = parseTrustedProxies(stringFlag(values, "trusted-proxies") ?? "");
  if ("error" in parsed) throw new UsageError(`--trusted-proxies: ${parsed.error}`);
  return parsed;
}

/**
 * Every usable CPU (the container's CPU limit included) when tokens are in Redis. The embedded
 * file store is the one-laptop mode: one process, so its start-up notes are said once and every
 * check sees the same file state.
 */
function defaultWorkers(values: Values, env: NodeJS.ProcessEnv): number {
  const redis = stringFlag(values, "redis-url") ?? (env.REDIS_URL || undefined);
  return redis === undefined ? 1 : usableCpus();
}

function cacheConfig(values: Values): CacheConfig {
  const ttlMs = durationFlag(values, "cache-ttl", "2s");
  // Longer would let a revocation whose pub/sub message was lost keep working for that long.
  if (ttlMs > 60_000) throw new UsageError("--cache-ttl: at most 1m (0 turns the cache off)");
  const negativeTtlMs = durationFlag(values, "cache-negative-ttl", "500ms");
  if (negativeTtlMs > ttlMs) {
    throw new UsageError("--cache-negative-ttl: must not be longer than --cache-ttl");
  }
  return {
    ttlMs,
    negativeTtlMs,
    maxEntries: countFlag(values, "cache-max-entries", 100_000, 1, 10_000_000),
    maxBytes: bytesFlag(values, "cache-max-bytes", "64Mi"),
  };
}

function countFlag(values: Values, name: string, fallback: number, min: number, max: number) {
  const text = stringFlag(values, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(`--${name}: "${text}" must be a whole number from ${min} to ${max}`);
  }
  return n;
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
};

/** A byte count as Kubernetes writes memory quantities: 512Mi, 1Gi, 65536. */
function bytesFlag(values: Values, name: string, fallback: string): number {
  const text = stringFlag(values, name) ?? fallback;
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(text);
  const bytes = m ? Number(m[1]) * (BYTE_UNITS[m[2] ?? ""] ?? 1) : NaN;
  if (!(bytes >= 1024)) {
    throw new UsageError(`--${name}: "${text}" is not a size of at least 1Ki (e.g. 64Mi)`);
  }
  return bytes;
}

export { STORE_FLAGS };

export interface WebhookConfig {
  readonly host: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly injection: InjectionConfig;
}

const SECRET_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** What /mutate injects: the image, and Secret references (never values) for Redis and the key. */
function injectionConfig(values: Values, store: StoreConfig): InjectionConfig {
  const redisRef = stringFlag(values, "sidecar-redis-secret") ?? "tokenscope-redis:url";
  const [redisName = "", redisKey = ""] = redisRef.split(":");
  if (!SECRET_NAME_RE.test(redisName) || !/^[-._a-zA-Z0-9]{1,253}$/.test(redisKey)) {
    throw new UsageError(`--sidecar-redis-secret: "${redisRef}" is not SECRET:KEY`);
  }
  const hmacSecret = stringFlag(values, "sidecar-hmac-secret") ?? "tokenscope-hmac-key";
  if (!SECRET_NAME_RE.test(hmacSecret)) {
    throw new UsageError(`--sidecar-hmac-secret: "${hmacSecret}" is not a Secret name`);
  }
  const image = stringFlag(values, "sidecar-image") ?? DEFAULT_INJECTION.image;
  if (!/^[^\s]{1,512}$/.test(image))
    throw new UsageError(`--sidecar-image: "${image}" is not an image`);
  return {
    ...DEFAULT_INJECTION,
    image,
    environment: store.environment,
    redisPrefix: store.redisPrefix,
    redisUrlSecret: { name: redisName, key: redisKey },
    hmacKeySecret: hmacSecret,
  };
}

/** On when given a certificate and key (SPEC §5); --webhook-addr alone is a mistake, not a no-op. */
function webhookConfig(values: Values, store: StoreConfig): WebhookConfig | undefined {
  const addr = stringFlag(values, "webhook-addr");
  const certFile = stringFlag(values, "webhook-cert-file");
  const keyFile = stringFlag(values, "webhook-key-file");
  if (certFile === undefined && keyFile === undefined) {
    if (addr !== undefined) {
      throw new UsageError("--webhook-addr: also pass --webhook-cert-file and --webhook-key-file");
    }
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    throw new UsageError("--webhook-cert-file and --webhook-key-file go together");
  }
  const { host, port } = parseHostPort("webhook-addr", addr ?? "0.0.0.0:9443");
  return {
    host,
    port,
    certFile: resolve(certFile),
    keyFile: resolve(keyFile),
    injection: injectionConfig(values, store),
  };
}
