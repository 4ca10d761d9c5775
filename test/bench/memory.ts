// `npm run bench:memory`: the memory probe of `npm run bench` on its own (RSS of one `serve`
// process with N distinct hot tokens), repeated, with V8's heap spaces; and, with --snapshot DIR,
// a heap snapshot of the loaded process (summarise it with test/bench/heap-summary.ts).
// Flags: --tokens N (hot tokens, 100000), --rounds N (3; the median is printed),
// --node-options "..." (NODE_OPTIONS for the server, e.g. a young-generation size), --snapshot DIR.
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { readHmacKey } from "../../src/hmac-key.ts";
import { startRedis } from "../harness/redis.ts";
import { writeHmacKey } from "../harness/server.ts";
import { measureHotTokenRss } from "./probes.ts";
import type { Target } from "./targets.ts";
import { ENVIRONMENT, PREFIX, seedTokens, writeScopes } from "./workload.ts";

const { values } = parseArgs({
  options: {
    tokens: { type: "string", default: "100000" },
    rounds: { type: "string", default: "3" },
    "node-options": { type: "string" },
    snapshot: { type: "string" },
  },
});
const TOKENS = Number(values.tokens);
const ROUNDS = Math.max(1, Number(values.rounds));
const log = (msg: string) => process.stdout.write(`${msg}\n`);
const dir = mkdtempSync(join(tmpdir(), "tokenscope-memory-"));

async function snapshot(target: Target, into: string): Promise<void> {
  const count = () => readdirSync(into).filter((f) => f.endsWith(".heapsnapshot")).length;
  const before = count();
  process.kill(target.pid, "SIGUSR2");
  // The snapshot is written synchronously by the target; wait until its file is complete.
  const giveUpAt = Date.now() + 120_000;
  while (count() === before && Date.now() < giveUpAt) await sleep(200);
  await fetch(`http://127.0.0.1:${target.httpPort}/metrics`);
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const savedNodeOptions = process.env.NODE_OPTIONS;
  try {
    const keyFile = writeHmacKey(dir);
    const scopes = writeScopes(join(dir, "scopes"));
    await seedTokens({
      port: redis.port,
      key: readHmacKey(keyFile),
      count: TOKENS,
      revokedFrom: TOKENS,
    });
    const serveArgs = [
      `--redis-url=${redis.url}`,
      `--redis-prefix=${PREFIX}`,
      `--hmac-key-file=${keyFile}`,
      `--environment=${ENVIRONMENT}`,
      `--scopes=${scopes}`,
    ];
    const snapshotDir = values.snapshot === undefined ? undefined : resolve(values.snapshot);
    const nodeOptions = [
      values["node-options"] ?? "",
      snapshotDir === undefined
        ? ""
        : `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}`,
    ]
      .join(" ")
      .trim();
    if (snapshotDir !== undefined) mkdirSync(snapshotDir, { recursive: true });
    // The server is spawned with this process's environment.
    if (nodeOptions !== "") process.env.NODE_OPTIONS = nodeOptions;
    log(`# memory probe: ${TOKENS} hot tokens, NODE_OPTIONS="${nodeOptions}"`);
    const runs = [];
    for (let round = 0; round < ROUNDS; round++) {
      const hot = await measureHotTokenRss({
        dir,
        serveArgs,
        tokens: TOKENS,
        afterPasses:
          snapshotDir === undefined || round > 0
            ? undefined
            : (target) => snapshot(target, snapshotDir),
      });
      runs.push(hot);
      log(
        `RSS with ${hot.tokens} distinct hot tokens: ${hot.rssMB.toFixed(0)} MB (idle ${hot.idleMB.toFixed(0)} MB; cache hits on the second pass ${hot.secondPassHits}/${hot.tokens}) heap MB ${JSON.stringify(hot.heapMB)}`,
      );
    }
    const sorted = runs.map((r) => r.rssMB).sort((a, b) => a - b);
    log(
      `median RSS over ${ROUNDS}: ${(sorted[Math.floor((ROUNDS - 1) / 2)] ?? NaN).toFixed(0)} MB`,
    );
  } finally {
    if (savedNodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = savedNodeOptions;
    await redis.stop();
  }
}

await main();
