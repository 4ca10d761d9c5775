// `npm run bench:memory`: the memory probe of `npm run bench` on its own (RSS of one `serve`
// process with N distinct hot tokens), repeated, with V8's heap spaces; and, with --snapshot DIR,
// a heap snapshot of the loaded process (summarise it with test/bench/heap-summary.ts).
// Flags: --tokens N (hot tokens, 100000), --rounds N (3; the median is printed),
// --variant 'NAME=FLAGS' (repeatable: each variant is probed in turn, every round; FLAGS are node
// and V8 flags for the server, e.g. --variant default= --variant semi8=--max-semi-space-size=8),
// --snapshot DIR, --form compiled|typescript|both (compiled: the image's JavaScript, the default;
// typescript: the sources on Node's type stripping; both: each variant in both forms, alternating),
// --idle-workers N (also, per case and round, the idle RSS of `serve --workers N`: the primary and
// its N workers summed, since each process loads its own modules).
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { readHmacKey } from "../../src/hmac-key.ts";
import { startRedis } from "../harness/redis.ts";
import { writeHmacKey } from "../harness/server.ts";
import { compiledImage, type Form } from "./compiled.ts";
import { measureHotTokenRss } from "./probes.ts";
import { rssBytes } from "./procs.ts";
import { startTokenscope, type Target } from "./targets.ts";
import { seedTokens, serveArgsFor, writeScopes } from "./workload.ts";

const { values } = parseArgs({
  options: {
    tokens: { type: "string", default: "100000" },
    rounds: { type: "string", default: "3" },
    variant: { type: "string", multiple: true },
    snapshot: { type: "string" },
    form: { type: "string", default: "compiled" },
    "idle-workers": { type: "string", default: "0" },
  },
});
const FORMS: readonly Form[] =
  values.form === "both"
    ? ["typescript", "compiled"]
    : values.form === "typescript"
      ? ["typescript"]
      : ["compiled"];
if (!["both", "typescript", "compiled"].includes(values.form)) {
  throw new Error("--form: compiled, typescript or both");
}
const TOKENS = Number(values.tokens);
const ROUNDS = Math.max(1, Number(values.rounds));
const IDLE_WORKERS = Number(values["idle-workers"]);
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

/** RSS of an idle `serve --workers N` tree, 2 s after it turned ready. */
async function idleTreeMB(opts: {
  serveArgs: string[];
  nodeArgs: string[];
  entry: string | undefined;
}): Promise<number> {
  const target = await startTokenscope({
    name: "idle-workers",
    dir,
    args: [...opts.serveArgs, `--workers=${IDLE_WORKERS}`],
    nodeArgs: opts.nodeArgs,
    entry: opts.entry,
  });
  try {
    await sleep(2000);
    return rssBytes(target.pid) / 2 ** 20;
  } finally {
    await target.stop();
  }
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
      `# memory probe: ${TOKENS} hot tokens, ${ROUNDS} round(s) of ${variants.length} variant(s), ${FORMS.join(" and ")}`,
    );
    const image = FORMS.includes("compiled") ? compiledImage(dir, log) : undefined;
    const entry = image?.entry;
    const runs = new Map<
      string,
      {
        rss: number[];
        idle: number[];
        rate: number[];
        cpu: number[];
        tree: number[];
        uncached: number;
      }
    >();
    const cases = variants.flatMap((v) =>
      FORMS.map((form) => ({
        ...v,
        form,
        name: FORMS.length > 1 ? `${v.name} ${form}` : v.name,
      })),
    );
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of cases) {
        const snapshotHere = snapshotDir !== undefined && round === 0;
        const nodeArgs = [
          // The image's own flags first (compiled form): a variant's flags come later and win.
          ...(variant.form === "compiled" ? (image?.nodeArgs ?? []) : []),
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
          entry: variant.form === "compiled" ? entry : undefined,
          afterPasses: snapshotHere ? (target) => snapshot(target, snapshotDir) : undefined,
        });
        const run = runs.get(variant.name) ?? {
          rss: [],
          idle: [],
          rate: [],
          cpu: [],
          tree: [],
          uncached: 0,
        };
        run.idle.push(hot.idleMB);
        // A pass slower than the cache TTL (a busy machine) measures misses, not hot tokens.
        if (hot.secondPassHits === hot.tokens) {
          run.rss.push(hot.rssMB);
          run.rate.push(hot.secondPassChecksPerSecond);
          run.cpu.push(hot.secondPassCpuUsPerCheck);
        } else {
          run.uncached++;
        }
        runs.set(variant.name, run);
        if (IDLE_WORKERS > 0) {
          const tree = await idleTreeMB({
            serveArgs,
            nodeArgs,
            entry: variant.form === "compiled" ? entry : undefined,
          });
          run.tree.push(tree);
          log(
            `${variant.name} (${variant.form}): idle RSS of serve --workers ${IDLE_WORKERS} (${IDLE_WORKERS + 1} processes) ${tree.toFixed(0)} MB`,
          );
        }
        const heap = Object.entries(hot.heapMB)
          .filter(([k, v]) => v > 0 && /^(new|old|large_object):|^external$/.test(k))
          .map(([k, v]) => `${k}=${v}`)
          .join(" ");
        log(
          `${variant.name} (${variant.form}; ${nodeArgs.join(" ")}): RSS with ${hot.tokens} distinct hot tokens ${hot.rssMB.toFixed(0)} MB, peak ${hot.peakRssMB.toFixed(0)} MB (idle ${hot.idleMB.toFixed(0)} MB; cache hits on the second pass ${hot.secondPassHits}/${hot.tokens} at ${hot.secondPassChecksPerSecond.toFixed(0)} checks/s, ${hot.secondPassCpuUsPerCheck.toFixed(0)} µs CPU each; heap MB ${heap})`,
        );
      }
    }
    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] ?? NaN;
    for (const [name, run] of runs) {
      log(
        `${name}: median RSS ${median(run.rss).toFixed(0)} MB, idle ${median(run.idle).toFixed(0)} MB, second pass ${median(run.rate).toFixed(0)} checks/s at ${median(run.cpu).toFixed(0)} µs CPU each, over ${run.rss.length} run(s)${run.uncached > 0 ? ` (${run.uncached} more not counted: not every token cached on the second pass)` : ""}`,
      );
    }
    if (FORMS.length > 1) {
      for (const v of variants) {
        const ts = runs.get(`${v.name} typescript`);
        const js = runs.get(`${v.name} compiled`);
        if (ts === undefined || js === undefined) continue;
        const side = (key: "rss" | "idle" | "tree") =>
          `${median(ts[key]).toFixed(0)} → ${median(js[key]).toFixed(0)} MB (${(median(js[key]) - median(ts[key])).toFixed(0)})`;
        log(
          `${v.name}: type-stripped → compiled, idle ${side("idle")}, with ${TOKENS} hot tokens ${side("rss")}${IDLE_WORKERS > 0 ? `, idle --workers ${IDLE_WORKERS} ${side("tree")}` : ""}`,
        );
      }
    }
  } finally {
    await redis.stop();
  }
}

await main();
