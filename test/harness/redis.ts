import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.ts";

// A real redis-server per suite, on a free loopback port, never a mock. Callers stop it in
// `after()`; should a test run die before that, the exit hook below still kills every server.

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Terminates the server and removes its directory. */
  stop(): Promise<void>;
  /** Sends a signal (SIGKILL by default); waits for exit unless it only pauses or resumes. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port. */
  start(): Promise<void>;
  /** One command over a raw connection (no client library): the reply as text, or null. */
  command(...args: string[]): Promise<string | null>;
  /** As command, for any reply shape: arrays (SCAN, XRANGE, HGETALL, ...) come back nested. */
  reply(...args: string[]): Promise<RedisValue>;
}

export type RedisValue = string | null | RedisValue[];

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

const START_TIMEOUT_MS = 5000;
const NON_TERMINATING: readonly string[] = ["SIGSTOP", "SIGCONT", "SIGTSTP"];

function encode(args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("");
}

/** Parses one reply of any type at `at`; undefined while it is incomplete. */
function parseNested(buf: Buffer, at: number): { value: RedisValue; next: number } | undefined {
  const end = buf.indexOf("\r\n", at);
  if (end < 0) return undefined;
  const head = buf.subarray(at + 1, end).toString();
  const type = String.fromCharCode(buf[at] ?? 0);
  if (type === "-") throw new Error(`redis error: ${head}`);
  if (type === "$") {
    const length = Number(head);
    if (length < 0) return { value: null, next: end + 2 };
    if (buf.length < end + 2 + length + 2) return undefined;
    return { value: buf.subarray(end + 2, end + 2 + length).toString(), next: end + 4 + length };
  }
  if (type === "*") {
    const count = Number(head);
    if (count < 0) return { value: null, next: end + 2 };
    const items: RedisValue[] = [];
    let next = end + 2;
    for (let i = 0; i < count; i++) {
      const item = parseNested(buf, next);
      if (item === undefined) return undefined;
      items.push(item.value);
      next = item.next;
    }
    return { value: items, next };
  }
  return { value: head, next: end + 2 };
}

export function redisReply(port: number, args: string[], timeoutMs = 2000): Promise<RedisValue> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const socket = connect(port, "127.0.0.1", () => socket.write(encode(args)));
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no reply within ${timeoutMs} ms`)),
    );
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const reply = parseNested(buf, 0);
        if (reply === undefined) return;
        socket.destroy();
        resolve(reply.value);
      } catch (err) {
        socket.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/** One command; the reply as text (an array reply as its length, as the tests use it). */
export async function redisCommand(
  port: number,
  args: string[],
  timeoutMs = 1000,
): Promise<string | null> {
  const value = await redisReply(port, args, timeoutMs);
  return Array.isArray(value) ? String(value.length) : value;
}

export interface RedisOptions {
  /** appendonly with fsync on every write, so data survives kill() + start() as in production. */
  readonly durable?: boolean;
  /** More redis-server arguments (replicaof, cluster-enabled, ...). */
  readonly extraArgs?: readonly string[];
  /** Runs `redis-server --sentinel` with this config file instead of a data server. */
  readonly sentinelConfig?: string;
}

function spawnRedis(
  port: number,
  dir: string,
  opts: RedisOptions,
): { child: ChildProcess; output: () => string } {
  const persistence = opts.durable
    ? ["--appendonly", "yes", "--appendfsync", "always"]
    : ["--appendonly", "no"];
  const args = opts.sentinelConfig
    ? [opts.sentinelConfig, "--sentinel", "--port", String(port), "--bind", "127.0.0.1"]
    : ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", dir];
  const child = spawn("redis-server", [...args, ...(opts.extraArgs ?? [])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  return { child, output: () => output };
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export async function launch(port: number, dir: string, opts: RedisOptions): Promise<ChildProcess> {
  const { child, output } = spawnRedis(port, dir, opts);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  const giveUpAt = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== undefined) {
      running.delete(child);
      const missing = "code" in spawnError && spawnError.code === "ENOENT";
      throw missing
        ? new Error("redis-server is not installed (apt-get install -y redis-server)")
        : spawnError;
    }
    if (hasExited(child)) throw new Error(`redis-server exited during start:\n${output()}`);
    if ((await redisCommand(port, ["PING"], 200).catch(() => undefined)) === "PONG") return child;
    if (Date.now() > giveUpAt) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not answer PING on ${port}:\n${output()}`);
    }
    await sleep(20);
  }
}

export async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (hasExited(child)) return;
  const exited = once(child, "exit");
  child.kill(signal);
  await exited;
}

/** TOKENSCOPE_TEST_REDIS=cluster runs the suites that do not kill servers on a Redis Cluster. */
export const CLUSTER_MODE = process.env.TOKENSCOPE_TEST_REDIS === "cluster";

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  if (CLUSTER_MODE && opts.sentinelConfig === undefined && opts.extraArgs === undefined) {
    return clusterAsServer();
  }
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "tokenscope-redis-"));
  let child: ChildProcess | undefined = await launch(port, dir, opts);

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      if (child !== undefined && !hasExited(child)) throw new Error("redis-server is running");
      await mkdir(dir, { recursive: true });
      child = await launch(port, dir, opts);
    },
    async kill(signal = "SIGKILL") {
      if (child === undefined) return;
      if (NON_TERMINATING.includes(signal)) {
        child.kill(signal);
        return;
      }
      await terminate(child, signal);
    },
    async stop() {
      if (child !== undefined) {
        child.kill("SIGCONT"); // a paused server would never act on SIGTERM
        const timer = setTimeout(() => child?.kill("SIGKILL"), 3000);
        await terminate(child, "SIGTERM");
        clearTimeout(timer);
        child = undefined;
      }
      await rm(dir, { recursive: true, force: true });
    },
    command: (...args) => redisCommand(port, args),
    reply: (...args) => redisReply(port, args),
  };
  return server;
}

/** A Redis Cluster behind the RedisServer interface: no fault injection, commands via redis-cli -c. */
async function clusterAsServer(): Promise<RedisServer> {
  const { startCluster } = await import("./redis-topologies.ts");
  const cluster = await startCluster();
  const port = Number(/:(\d+)/.exec(cluster.url)?.[1]);
  const refuse = () => Promise.reject(new Error("fault injection needs a single redis-server"));
  return {
    url: cluster.url,
    port,
    stop: () => cluster.stop(),
    kill: refuse,
    start: refuse,
    // A raw reply from one node would show only that node's keys: not a view of the cluster.
    reply: () => Promise.reject(new Error("raw replies need a single redis-server")),
    command: (...args) => {
      const r = spawnSync("redis-cli", ["-c", "-p", String(port), "--raw", ...args], {
        encoding: "utf8",
      });
      const out = r.stdout.replace(/\n$/, "");
      if (r.status !== 0 || /^(ERR|WRONGTYPE|MOVED|CROSSSLOT)\b/.test(out)) {
        return Promise.reject(new Error(out || r.stderr));
      }
      return Promise.resolve(out === "" ? null : out);
    },
  };
}
