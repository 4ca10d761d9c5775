// `npm run bench:memory`: the memory probe of `npm run bench` on its own (RSS of one `serve`
// process with N distinct hot tokens), repeated, with V8's heap spaces; and, with --snapshot DIR,
// a heap snapshot of the loaded process (summarise it with test/bench/heap-summary.ts).
// Flags: --tokens N (hot tokens, 100000), --rounds N (3; the median is printed),
// --variant 'NAME=FLAGS' (repeatable: each variant is probed in turn, every round; FLAGS are node
// and V8 flags for the server, e.g. --variant default= --variant semi8=--max-semi-space-size=8),
// --snapshot DIR.
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
import { seedTokens, serveArgsFor, writeScopes } from "./workload.ts";

const { values } = parseArgs({
  options: {
    tokens: { type: "string", default: "100000" },
    rounds: { type: "string", default: "3" },
    variant: { type: "string", multiple: true },
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
  try {
    const keyFile = writeHmacKey(dir);
    const scopes = writeScopes(join(dir, "scopes"));
    await seedTokens({
      port: redis.port,
      key: readHmacKey(keyFile),
      count: TOKENS,
      revokedFrom: TOKENS,
    });
    const serveArgs = serveArgsFor(redis.url, keyFile, scopes);
    const snapshotDir = values.snapshot === undefined ? undefined : resolve(values.snapshot);
    if (snapshotDir !== undefined) mkdirSync(snapshotDir, { recursive: true });
    const variants = (values.variant ?? ["default="]).map((v) => {
      const eq = v.indexOf("=");
      return eq < 0 ? { name: v, options: "" } : { name: v.slice(0, eq), options: v.slice(eq + 1) };
    });
    log(
      `# memory probe: ${TOKENS} hot tokens, ${ROUNDS} round(s) of ${variants.length} variant(s)`,
    );
    const runs = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of variants) {
        const snapshotHere = snapshotDir !== undefined && round === 0;
        const nodeArgs = [
          ...variant.options.split(" "),
          ...(snapshotHere
            ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapshotDir}`]
            : []),
        ].filter((a) => a !== "");
        const hot = await measureHotTokenRss({
          dir,
          serveArgs,
          tokens: TOKENS,
          nodeArgs,
          afterPasses: snapshotHere ? (target) => snapshot(target, snapshotDir) : undefined,
        });
        runs.get(variant.name)?.push(hot.rssMB);
        const heap = Object.entries(hot.heapMB)
          .filter(([k, v]) => v > 0 && /^(new|old|large_object):|^external$/.test(k))
          .map(([k, v]) => `${k}=${v}`)
          .join(" ");
        log(
          `${variant.name} (${nodeArgs.join(" ")}): RSS with ${hot.tokens} distinct hot tokens ${hot.rssMB.toFixed(0)} MB, peak ${hot.peakRssMB.toFixed(0)} MB (idle ${hot.idleMB.toFixed(0)} MB; cache hits on the second pass ${hot.secondPassHits}/${hot.tokens}; heap MB ${heap})`,
        );
      }
    }
    for (const [name, rss] of runs) {
      const sorted = [...rss].sort((a, b) => a - b);
      const median = sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
      log(`${name}: median RSS ${median.toFixed(0)} MB over ${rss.length} run(s)`);
    }
  } finally {
    await redis.stop();
  }
}

await main();
