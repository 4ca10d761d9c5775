// One ioredis client for a --redis-url, whatever the topology:
//   redis://[:password@]host:port[/db]        rediss:// for TLS
//   redis+sentinel://[:password@]host:port[,host:port...]/<master-name>[/db]
//   redis+cluster://[:password@]host:port[,host:port...]
// and rediss+sentinel:// / rediss+cluster:// for TLS to every node (and sentinel).
// Every client fails fast: no offline queue, no retried requests, bounded connect and socket
// waits. The store still races every operation against its own deadline on top of this.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

export type RedisTopology = "single" | "sentinel" | "cluster";

export interface RedisEndpoint {
  readonly topology: RedisTopology;
  readonly nodes: readonly { host: string; port: number }[];
  readonly masterName?: string;
  readonly db: number;
  readonly password?: string;
  readonly username?: string;
  readonly tls: boolean;
}

export class RedisUrlError extends Error {
  override readonly name = "RedisUrlError";
}

function parseNodes(list: string, defaultPort: number): { host: string; port: number }[] {
  return list.split(",").map((item) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(item.trim());
    const port = Number(m?.[3] ?? defaultPort);
    if (!m || port < 1 || port > 65535) throw new RedisUrlError(`"${item}" is not HOST[:PORT]`);
    return { host: m[1] ?? m[2] ?? "", port };
  });
}

/** Parses a --redis-url; the error never repeats the URL, which may hold a password. */
export function parseRedisUrl(url: string): RedisEndpoint {
  const m =
    /^(rediss?|rediss?\+sentinel|rediss?\+cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#@]+)(\/[^?#]*)?$/.exec(
      url,
    );
  if (!m) {
    throw new RedisUrlError(
      "expected redis://HOST:PORT, rediss://…, redis+sentinel://HOST:PORT,…/MASTER or redis+cluster://HOST:PORT,…",
    );
  }
  const [, scheme = "", user, pass, hosts = "", path = ""] = m;
  const topology: RedisTopology = scheme.endsWith("+sentinel")
    ? "sentinel"
    : scheme.endsWith("+cluster")
      ? "cluster"
      : "single";
  const segments = path.split("/").filter((s) => s !== "");
  const masterName = topology === "sentinel" ? segments.shift() : undefined;
  if (topology === "sentinel" && !masterName) {
    throw new RedisUrlError("redis+sentinel:// needs the master name as its path: …/mymaster");
  }
  const dbText = segments.shift() ?? "0";
  const db = Number(dbText);
  if (!/^\d{1,2}$/.test(dbText) || segments.length > 0 || (topology === "cluster" && db !== 0)) {
    throw new RedisUrlError("the path may only name a database number (never on a cluster)");
  }
  const nodes = parseNodes(hosts, topology === "sentinel" ? 26379 : 6379);
  if (topology === "single" && nodes.length !== 1) {
    throw new RedisUrlError(
      "redis:// takes one HOST:PORT; use redis+sentinel:// or redis+cluster://",
    );
  }
  const decode = (s: string | undefined) => (s ? decodeURIComponent(s) : undefined);
  return {
    topology,
    nodes,
    masterName,
    db,
    username: decode(user),
    password: decode(pass),
    tls: scheme.startsWith("rediss"),
  };
}

/** Options every connection shares: fail fast, never queue, drop silent sockets. */
function failFast(deadlineMs: number): RedisOptions {
  return {
    commandTimeout: deadlineMs,
    // A request never waits for a connection: fail now, the decision is store_unavailable.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 1000,
    // commandTimeout fails requests on a hung server but keeps the dead socket forever; this
    // drops a socket that stays silent after a write so a reconnect can replace it.
    socketTimeout: Math.max(1000, deadlineMs * 10),
    retryStrategy: (attempt: number) => Math.min(attempt * 50, 200),
  };
}

export function connectRedis(url: string, deadlineMs: number): RedisClient {
  const endpoint = parseRedisUrl(url);
  const auth = { username: endpoint.username, password: endpoint.password };
  if (endpoint.topology === "cluster") {
    const {
      enableOfflineQueue: _queue,
      retryStrategy: _retry,
      ...nodeOptions
    } = failFast(deadlineMs);
    const options: ClusterOptions = {
      // ioredis' cluster queue ignores commandTimeout (ioredis#1604): it must be off up here.
      enableOfflineQueue: false,
      redisOptions: { ...nodeOptions, ...auth, ...(endpoint.tls ? { tls: {} } : {}) },
      clusterRetryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      retryDelayOnTryAgain: 50,
      maxRedirections: 4,
      slotsRefreshTimeout: 1000,
      // Writes and reads both go to masters: a replica may not have seen a revocation yet.
      scaleReads: "master",
    };
    return new Cluster([...endpoint.nodes], options);
  }
  const common: RedisOptions = { ...failFast(deadlineMs), ...auth, db: endpoint.db };
  if (endpoint.topology === "sentinel") {
    return new Redis({
      ...common,
      sentinels: [...endpoint.nodes],
      name: endpoint.masterName,
      // No failoverDetector: when +switch-master arrives while the client is still connecting it
      // ends the client for good (seen in our failover test; off by default since ioredis#1363).
      // A dead master drops the socket, a hung one is dropped by socketTimeout, and every
      // reconnect asks the sentinels again. A demoted master answers writes with READONLY:
      reconnectOnError: (err: Error) => (err.message.startsWith("READONLY") ? 2 : false),
      sentinelRetryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
      ...(endpoint.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
      role: "master",
    });
  }
  const node = endpoint.nodes[0] ?? { host: "127.0.0.1", port: 6379 };
  return new Redis({
    ...common,
    host: node.host,
    port: node.port,
    ...(endpoint.tls ? { tls: {} } : {}),
  });
}
