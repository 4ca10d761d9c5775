// Real Redis topologies on loopback for the tests: Sentinel (1 master, 1 replica, 3 sentinels)
// and Cluster (3 masters + 3 replicas, made with `redis-cli --cluster create`). Every process
// is a real redis-server started here and stopped by stop().
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freeClusterPort, freePort } from "./ports.ts";
import { launch, redisCommand, terminate } from "./redis.ts";

export const MASTER_NAME = "tokenscope";

interface Node {
  readonly port: number;
  readonly dir: string;
  child: ChildProcess | undefined;
  readonly args: readonly string[];
  readonly sentinelConfig?: string;
}

async function startNode(
  root: string,
  args: string[],
  sentinelConfig?: (port: number) => string,
): Promise<Node> {
  const port = args.includes("--cluster-enabled") ? await freeClusterPort() : await freePort();
  const dir = join(root, String(port));
  await mkdir(dir, { recursive: true });
  let configFile: string | undefined;
  if (sentinelConfig) {
    configFile = join(dir, "sentinel.conf");
    await writeFile(configFile, sentinelConfig(port));
  }
  const node: Node = { port, dir, child: undefined, args, sentinelConfig: configFile };
  node.child = await launch(port, dir, {
    durable: true,
    extraArgs: args,
    sentinelConfig: configFile,
  });
  return node;
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const giveUp = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export interface SentinelSetup {
  /** redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/tokenscope */
  readonly url: string;
  /** The port of the current master, as the sentinels see it. */
  masterPort(): Promise<number>;
  /** SIGKILLs the current master and waits until the sentinels have promoted another. */
  killMaster(): Promise<{ oldPort: number; newPort: number; failoverMs: number }>;
  stop(): Promise<void>;
}

export async function startSentinel(): Promise<SentinelSetup> {
  const root = await mkdtemp(join(tmpdir(), "tokenscope-sentinel-"));
  const master = await startNode(root, []);
  const replica = await startNode(root, ["--replicaof", "127.0.0.1", String(master.port)]);
  await until("the replica to sync", 10_000, async () => {
    const info = (await redisCommand(replica.port, ["INFO", "replication"])) ?? "";
    return /master_link_status:up/.test(info) ? true : undefined;
  });
  const sentinels: Node[] = [];
  for (let i = 0; i < 3; i++) {
    sentinels.push(
      await startNode(root, [], (port) =>
        [
          `port ${port}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 5000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          "",
        ].join("\n"),
      ),
    );
  }
  const first = sentinels[0];
  if (!first) throw new Error("no sentinel");
  /** The master as the sentinels report it (INFO sentinel: "address=127.0.0.1:PORT"). */
  const masterPort = async () => {
    const info = (await redisCommand(first.port, ["INFO", "sentinel"])) ?? "";
    const port = /address=127\.0\.0\.1:(\d+)/.exec(info)?.[1];
    if (port === undefined) throw new Error(`no master in: ${info}`);
    return Number(port);
  };
  await until("the sentinels to know each other and the replica", 15_000, async () => {
    const info = (await redisCommand(first.port, ["INFO", "sentinel"])) ?? "";
    return /slaves=1,sentinels=3/.test(info) ? true : undefined;
  });
  const nodes = [master, replica, ...sentinels];
  return {
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(",")}/${MASTER_NAME}`,
    masterPort,
    async killMaster() {
      const oldPort = await masterPort();
      const victim = [master, replica].find((n) => n.port === oldPort);
      const t0 = Date.now();
      if (victim?.child) await terminate(victim.child, "SIGKILL");
      const newPort = await until("the sentinels to promote the replica", 20_000, async () => {
        const info = (await redisCommand(first.port, ["INFO", "sentinel"])) ?? "";
        const port = /status=ok,address=127\.0\.0\.1:(\d+)/.exec(info)?.[1];
        return port !== undefined && Number(port) !== oldPort ? Number(port) : undefined;
      });
      return { oldPort, newPort, failoverMs: Date.now() - t0 };
    },
    async stop() {
      for (const node of nodes) if (node.child) await terminate(node.child, "SIGKILL");
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface ClusterSetup {
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<ClusterSetup> {
  const root = await mkdtemp(join(tmpdir(), "tokenscope-cluster-"));
  const nodes: Node[] = [];
  for (let i = 0; i < 6; i++) {
    nodes.push(
      await startNode(root, [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
      ]),
    );
  }
  const stopAll = async () => {
    for (const node of nodes) if (node.child) await terminate(node.child, "SIGKILL");
    await rm(root, { recursive: true, force: true });
  };
  const created = spawnSync(
    "redis-cli",
    [
      "--cluster",
      "create",
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  if (created.status !== 0) {
    await stopAll();
    throw new Error(`redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`);
  }
  await until("cluster_state:ok and every replica in sync", 30_000, async () => {
    for (const node of nodes) {
      const info = (await redisCommand(node.port, ["CLUSTER", "INFO"])) ?? "";
      if (!/cluster_state:ok/.test(info)) return undefined;
      // A replica still in its first full sync acknowledges nothing: WAIT would time out.
      const repl = (await redisCommand(node.port, ["INFO", "replication"])) ?? "";
      if (/role:slave/.test(repl) && !/master_link_status:up/.test(repl)) return undefined;
      if (/role:master/.test(repl) && !/connected_slaves:1/.test(repl)) return undefined;
    }
    return true;
  });
  return {
    url: `redis+cluster://${nodes
      .slice(0, 3)
      .map((n) => `127.0.0.1:${n.port}`)
      .join(",")}`,
    stop: stopAll,
  };
}
