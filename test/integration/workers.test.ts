// `tokenscope serve --workers 2` as a real process tree (bin/tokenscope, node:cluster) on a real
// redis-server: both workers answer on the one gRPC port, one scrape of the primary's /metrics
// counts the checks of both, /readyz follows the workers, SIGTERM drains and exits 0.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { openBackends, type Backends } from "../../src/backends.ts";
import { serveConfig } from "../../src/config.ts";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { tokenServiceFor } from "../../src/tokens/token-service.ts";
import { checkClient } from "../harness/check-client.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { FIXTURE_SCOPES, tempDir, writeHmacKey } from "../harness/server.ts";

const BIN = fileURLToPath(new URL("../../bin/tokenscope", import.meta.url));
const CHECKS = 24;

let redis: RedisServer;
let child: ChildProcess;
let backends: Backends;
let args: string[];
const lines: Record<string, unknown>[] = [];
let grpcPort = 0;
let httpPort = 0;

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number) {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) assert.fail(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function readyz(): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status;
  } catch {
    return 0;
  }
}

before(async () => {
  redis = await startRedis();
  const dir = tempDir("workers");
  args = [
    "--workers=2",
    "--grpc-addr=127.0.0.1:0",
    "--http-addr=127.0.0.1:0",
    `--scopes=${FIXTURE_SCOPES}`,
    "--environment=prod",
    `--hmac-key-file=${writeHmacKey(dir)}`,
    `--redis-url=${redis.url}`,
    "--redis-prefix={ts-workers}:",
    "--shutdown-delay=1s",
  ];
  child = spawn(process.execPath, [BIN, "serve", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let buffered = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    for (const line of parts) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const serving = await waitFor(
    "the primary's start-up line",
    () => lines.find((l) => l.msg === "tokenscope serving" && l.workers === 2),
    20_000,
  );
  grpcPort = serving.grpc_port as number;
  httpPort = serving.http_port as number;
  const logger = createLogger({ level: "error", write: () => undefined });
  backends = await openBackends(serveConfig(args, {}), logger, { waitForStoreMs: 3000 });
});

after(async () => {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await backends.close();
  await redis.stop();
});

describe("serve --workers 2", () => {
  it("starts two workers on one port and turns ready when both are", async () => {
    const started = await waitFor(
      "both workers' start-up lines",
      () => {
        const ids = lines.filter((l) => l.msg === "tokenscope serving" && l.worker !== undefined);
        return ids.length === 2 ? ids : undefined;
      },
      20_000,
    );
    assert.deepEqual(
      started.map((l) => l.grpc_port),
      [grpcPort, grpcPort],
    );
    const giveUpAt = Date.now() + 20_000;
    while ((await readyz()) !== 200 && Date.now() < giveUpAt) await sleep(100);
    assert.equal(await readyz(), 200);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(metrics, /^tokenscope_workers\{state="ready"\} 2$/m);
  });

  it("one scrape of the primary counts the checks of every worker", async () => {
    const tokens = tokenServiceFor(
      backends,
      "prod",
      createLogger({ level: "error", write: () => undefined }),
    );
    const { token } = await tokens.issue({
      scope: "prod/reports-read",
      owner: "alice",
      labels: {},
      createdBy: "test",
    });
    const request = buildCheckRequest({
      method: "GET",
      path: "/v1/reports/2026",
      host: "reports.prod.svc.cluster.local",
      namespace: "prod",
      token,
    });
    // A new connection per check: cluster hands connections to the workers in turn.
    for (let i = 0; i < CHECKS; i++) {
      const client = checkClient(grpcPort);
      const res = await client.check(request, 5000);
      client.close();
      assert.equal(res.status?.code, 0);
    }
    const audits = await waitFor(
      "audit lines of every check",
      () => {
        const found = lines.filter((l) => l.msg === "audit" && l.owner === "alice");
        return found.length === CHECKS ? found : undefined;
      },
      10_000,
    );
    const byWorker = new Map<unknown, number>();
    for (const a of audits) byWorker.set(a.worker, (byWorker.get(a.worker) ?? 0) + 1);
    assert.equal(
      byWorker.size,
      2,
      `both workers answered checks: ${JSON.stringify([...byWorker])}`,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const allowed =
      /^tokenscope_checks_total\{decision="allow",reason="ok",namespace="prod",scope="prod\/reports-read"\} (\d+)$/m.exec(
        metrics,
      );
    assert.equal(Number(allowed?.[1]), CHECKS);
    const durations = /^tokenscope_check_duration_seconds_count\{decision="allow"\} (\d+)$/m.exec(
      metrics,
    );
    assert.equal(Number(durations?.[1]), CHECKS);
  });

  it("a worker that dies is replaced; /readyz is 503 until its replacement is ready", async () => {
    const started = () => lines.filter((l) => l.msg === "worker started");
    assert.equal(started().length, 2);
    const victim = started()[0]?.pid as number;
    process.kill(victim, "SIGKILL");
    const giveUpAt = Date.now() + 20_000;
    let sawNotReady = false;
    while (Date.now() < giveUpAt) {
      const status = await readyz();
      if (status === 503) sawNotReady = true;
      if (sawNotReady && status === 200 && started().length === 3) break;
      await sleep(25);
    }
    assert.ok(sawNotReady, "not ready while a worker was missing");
    assert.equal(started().length, 3, "a replacement worker was started");
    assert.equal(await readyz(), 200);
    assert.ok(
      lines.some((l) => l.msg === "worker exited; starting another" && l.signal === "SIGKILL"),
    );
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(metrics, /^tokenscope_workers\{state="ready"\} 2$/m);
  });

  it("SIGTERM to the primary drains the workers and exits 0", async () => {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    const draining = lines.filter((l) => l.msg === "draining");
    assert.equal(draining.length, 3, "the primary and both (live) workers drained");
  });
});
