// `npm run bench`: tokenscope beside an empty grpc-js server, in one run, under h2load.
// See README "Performance" for what is measured and how. Flags: --tokens N, --duration S,
// --quick (small and short: a smoke run, figures not meaningful), --json FILE,
// --compare DIR (also run `tokenscope` from another checkout, e.g. an older commit, as
// "tokenscope-before", in the same alternation), --concurrency 16,64 (closed-loop levels),
// --focus (closed loop and the memory probe only: no --workers 2, open loop or revocation),
// --rounds N (the closed-loop alternation N times; the table shows each target's median run),
// --rotate-us N (how long each body stays in h2load's file, 1000 µs; see rotator.ts),
// --no-pin (let every process run on any CPU; by default each single-process server under test
// gets the last CPU to itself and h2load, Redis and the bench the others: see pinning.ts),
// --typescript (run tokenscope's TypeScript sources; by default the image's compiled JavaScript).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readHmacKey } from "../../src/hmac-key.ts";
import { redisReply, startRedis } from "../harness/redis.ts";
import { writeHmacKey } from "../harness/server.ts";
import { cpuSeconds, rssBytes } from "./procs.ts";
import { h2load, type LoadResult } from "./h2load.ts";
import { rotateBodies } from "./rotator.ts";
import { pin, pinningHere } from "./pinning.ts";
import { delta, scrape, startBaseline, startTokenscope, type Target } from "./targets.ts";
import { mixBodies, seedTokens, serveArgsFor, writeScopes } from "./workload.ts";
import { measureRevocation, measureHotTokenRss, verifySample } from "./probes.ts";
import { compiledImage } from "./compiled.ts";

const { values } = parseArgs({
  options: {
    tokens: { type: "string" },
    duration: { type: "string" },
    quick: { type: "boolean", default: false },
    json: { type: "string", default: "bench-results.json" },
    compare: { type: "string" },
    concurrency: { type: "string" },
    focus: { type: "boolean", default: false },
    rounds: { type: "string", default: "1" },
    "rotate-us": { type: "string", default: "1000" },
    pin: { type: "boolean", default: true },
    typescript: { type: "boolean", default: false },
  },
  allowNegative: true,
});
const quick = values.quick;
const ROUNDS = Math.max(1, Number(values.rounds));
const ROTATE_US = Number(values["rotate-us"]);
const PINNING = values.pin ? pinningHere() : undefined;
const TYPESCRIPT = values.typescript || values.compare !== undefined;
const TOKENS = Number(values.tokens ?? (quick ? 20_000 : 1_000_000));
const DURATION_S = Number(values.duration ?? (quick ? 2 : 10));
const DISTINCT_ALLOWED = Math.min(10_000, Math.floor(TOKENS / 2));
const REVOKED_FROM = TOKENS - Math.min(1000, Math.floor(TOKENS / 10));
const REVOCATIONS = quick ? 20 : 100;
// The revocation probe revokes the last active tokens; the memory probe stays below them.
const HOT_TOKENS = Math.min(100_000, REVOKED_FROM - REVOCATIONS);
const ALL_LEVELS = [
  { concurrency: 1, clients: 1, streams: 1 },
  { concurrency: 16, clients: 4, streams: 4 },
  { concurrency: 64, clients: 4, streams: 16 },
];
const wanted = values.concurrency?.split(",").map(Number);
const LEVELS = ALL_LEVELS.filter((l) => wanted === undefined || wanted.includes(l.concurrency));
if (LEVELS.length === 0) throw new Error("--concurrency: choose among 1, 16, 64");

const log = (msg: string) => process.stdout.write(`${msg}\n`);
const dir = mkdtempSync(join(tmpdir(), "tokenscope-bench-"));

interface Row extends LoadResult {
  readonly target: string;
  readonly mode: string;
  readonly concurrency: number;
  readonly cpuUsPerRequest: number;
  readonly rssMB: number;
  readonly serverCounts: Record<string, number>;
  /** How many bodies the rotator put in h2load's file per second during the measured run. */
  readonly bodiesPerSecond: number;
  /** Token reads that reached Redis per second (GETs outside scripts: INFO commandstats). */
  readonly storeReadsPerSecond: number;
}

async function redisPid(port: number): Promise<number> {
  const info = await redisReply(port, ["INFO", "server"]);
  const pid = Number(/process_id:(\d+)/.exec(String(info))?.[1]);
  if (!(pid > 0)) throw new Error("Redis did not say its process id");
  return pid;
}

/**
 * Token record reads Redis has served so far. Every store read of a record is one GET; so is
 * the GET inside each script call (the usage write-back's compare-and-set), which Redis counts
 * as a GET too: script calls are taken off, one GET each.
 */
async function redisGets(port: number): Promise<number> {
  const info = String(await redisReply(port, ["INFO", "commandstats"]));
  const calls = (command: string) =>
    Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  return calls("get") - calls("evalsha") - calls("eval");
}

async function measure(
  target: Target,
  mode: string,
  level: (typeof LEVELS)[number],
  bodies: Buffer[],
  redisPort: number,
  rpsPerClient?: number,
): Promise<Row> {
  const bodyFile = join(dir, "body.bin");
  writeFileSync(bodyFile, bodies[0] ?? Buffer.alloc(0));
  const spec = {
    port: target.grpcPort,
    bodyFile,
    clients: level.clients,
    streams: level.streams,
    warmUpS: 0,
    logFile: join(dir, "h2load.log"),
    rpsPerClient,
    cpus: PINNING?.load,
  };
  const rotation = rotateBodies(bodyFile, bodies, ROTATE_US);
  try {
    await h2load({ ...spec, durationS: 1 }); // warm-up, not measured
    const countsBefore = await scrape(target);
    const cpuBefore = cpuSeconds(target.pid);
    const writtenBefore = rotation.written;
    const getsBefore = await redisGets(redisPort);
    const startedAt = performance.now();
    const result = await h2load({ ...spec, durationS: DURATION_S });
    const seconds = (performance.now() - startedAt) / 1000;
    const bodiesPerSecond = (rotation.written - writtenBefore) / seconds;
    const storeReadsPerSecond = ((await redisGets(redisPort)) - getsBefore) / seconds;
    const cpu = cpuSeconds(target.pid) - cpuBefore;
    const counts = delta(await scrape(target), countsBefore);
    return {
      ...result,
      target: target.name,
      mode,
      concurrency: rpsPerClient === undefined ? level.concurrency : 0,
      cpuUsPerRequest: (cpu / Math.max(1, result.requests)) * 1e6,
      rssMB: rssBytes(target.pid) / 2 ** 20,
      serverCounts: counts,
      bodiesPerSecond,
      storeReadsPerSecond,
    };
  } finally {
    await rotation.stop();
  }
}

/** Of several runs of one target at one level, the run with the median RPS (in run order). */
function medianRuns(runs: Row[]): Row[] {
  const groups = new Map<string, Row[]>();
  for (const r of runs) {
    const key = `${r.target} ${r.concurrency}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const sorted = [...g].sort((a, b) => a.rps - b.rps);
    return sorted[Math.floor((sorted.length - 1) / 2)] ?? (g[0] as Row);
  });
}

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "-");

function printTable(rows: Row[]): void {
  const header = [
    "target",
    "mode",
    "conc",
    "RPS",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "CPU µs/req",
    "RSS MB",
    "RPS ratio",
    "p99 ratio",
  ];
  const lines = [header];
  for (const r of rows) {
    const base = rows.find(
      (b) => b.target === "baseline" && b.mode === r.mode && b.concurrency === r.concurrency,
    );
    lines.push([
      r.target,
      r.mode,
      String(r.concurrency),
      fmt(r.rps, 0),
      fmt(r.p50Ms, 3),
      fmt(r.p99Ms, 3),
      fmt(r.p999Ms, 3),
      fmt(r.cpuUsPerRequest, 1),
      fmt(r.rssMB, 0),
      base && r !== base ? fmt(r.rps / base.rps) : "",
      base && r !== base ? fmt(r.p99Ms / base.p99Ms) : "",
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? "").length)));
  for (const l of lines) log(l.map((c, i) => c.padStart(widths[i] ?? 0)).join("  "));
}

async function main(): Promise<void> {
  log(`# tokenscope bench: ${TOKENS} tokens, ${DURATION_S} s per run${quick ? " (quick)" : ""}`);
  const redis = await startRedis();
  const targets: Target[] = [];
  try {
    const keyFile = writeHmacKey(dir);
    const key = readHmacKey(keyFile);
    const scopes = writeScopes(join(dir, "scopes"));
    let t = performance.now();
    await seedTokens({ port: redis.port, key, count: TOKENS, revokedFrom: REVOKED_FROM });
    log(
      `# seeded ${TOKENS} tokens across 100 scopes in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    t = performance.now();
    const bodies = mixBodies(DISTINCT_ALLOWED, REVOKED_FROM);
    log(
      `# ${bodies.length} request bodies (${DISTINCT_ALLOWED} distinct allowed tokens) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    const serveArgs = serveArgsFor(redis.url, keyFile, scopes);
    // What the image ships (compiled JavaScript, the image's node flags), unless --typescript.
    // An older checkout (--compare) can only run from its sources: then both sides do, so that
    // the comparison is of the code, not of the form it runs in.
    const image = TYPESCRIPT ? undefined : compiledImage(dir, log);
    if (TYPESCRIPT) {
      log(
        `# tokenscope runs from its TypeScript sources (${values.typescript ? "--typescript" : "as --compare's checkout must"})`,
      );
    }
    const form = { entry: image?.entry, nodeArgs: image?.nodeArgs };
    const baseline = await startBaseline(dir);
    targets.push(baseline);
    const ts1 = await startTokenscope({
      name: "tokenscope",
      dir,
      args: [...serveArgs, "--workers=1"],
      ...form,
    });
    targets.push(ts1);
    const before =
      values.compare === undefined
        ? []
        : [
            await startTokenscope({
              name: "tokenscope-before",
              dir,
              args: [...serveArgs, "--workers=1"],
              root: values.compare,
            }),
          ];
    targets.push(...before);
    const ts2 = values.focus
      ? undefined
      : await startTokenscope({
          name: "tokenscope-w2",
          dir,
          args: [...serveArgs, "--workers=2"],
          ...form,
        });
    if (ts2) targets.push(ts2);
    const compared = [baseline, ...before, ts1, ...(ts2 ? [ts2] : [])];
    if (PINNING) {
      for (const target of [baseline, ...before, ts1]) pin(target.pid, PINNING.server);
      pin(process.pid, PINNING.load);
      pin(await redisPid(redis.port), PINNING.load);
    }
    log(
      PINNING
        ? `# pinned: baseline and single-process tokenscope on CPU ${PINNING.server}; h2load, Redis and the bench on CPU ${PINNING.load}; tokenscope-w2 on any CPU`
        : "# not pinned: every process runs on any CPU",
    );

    const rows: Row[] = [];
    const closedRuns: Row[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const level of LEVELS) {
        // Alternating: every target at this concurrency before the next level.
        for (const target of compared) {
          const row = await measure(target, "closed", level, bodies, redis.port);
          log(
            `# ${row.target} c=${row.concurrency}: ${fmt(row.rps, 0)} req/s, p99 ${fmt(row.p99Ms, 3)} ms, ${fmt(row.bodiesPerSecond, 0)} bodies/s, ${fmt(row.storeReadsPerSecond, 0)} Redis GETs/s ${JSON.stringify(row.serverCounts)}`,
          );
          closedRuns.push(row);
        }
      }
    }
    rows.push(...medianRuns(closedRuns));
    const peak = Math.max(...rows.filter((r) => r.target === "baseline").map((r) => r.rps));
    const openRps = Math.max(4, Math.round(peak / 2));
    const open = { concurrency: 0, clients: 4, streams: 100 };
    for (const target of values.focus ? [] : compared) {
      const row = await measure(
        target,
        `open ${openRps}/s`,
        open,
        bodies,
        redis.port,
        openRps / open.clients,
      );
      log(
        `# ${row.target} open loop at ${openRps}/s: ${fmt(row.rps, 0)} req/s, p99 ${fmt(row.p99Ms, 3)} ms, ${fmt(row.storeReadsPerSecond, 0)} Redis GETs/s ${JSON.stringify(row.serverCounts)}`,
      );
      rows.push(row);
    }

    const verified = await verifySample(
      compared.slice(1),
      REVOKED_FROM,
      DISTINCT_ALLOWED,
      quick ? 50 : 200,
    );
    log(
      `# verified with a grpc-js client: ${verified.ok}/${verified.total} responses had the expected grpc-status and decision`,
    );

    log("");
    printTable(rows);
    log("");

    for (const t of targets.splice(0)) await t.stop();
    // The probes' servers are started by the bench and would inherit its CPU: not pinned.
    if (PINNING) pin(process.pid, PINNING.all);

    const revocation = values.focus
      ? undefined
      : await measureRevocation({
          dir,
          serveArgs,
          redisUrl: redis.url,
          firstToken: REVOKED_FROM - REVOCATIONS,
          count: REVOCATIONS,
          ...form,
        });
    if (revocation)
      log(
        `revocation (3 replicas, ${revocation.count} revocations): every replica denies after p50 ${fmt(revocation.allP50Ms, 1)} ms, p99 ${fmt(revocation.allP99Ms, 1)} ms (per replica p50 ${fmt(revocation.p50Ms, 1)} ms, p99 ${fmt(revocation.p99Ms, 1)} ms)`,
      );

    const hot = await measureHotTokenRss({ dir, serveArgs, tokens: HOT_TOKENS, ...form });
    log(
      `RSS with ${hot.tokens} distinct hot tokens: ${fmt(hot.rssMB, 0)} MB (idle ${fmt(hot.idleMB, 0)} MB; cache hits on the second pass ${hot.secondPassHits}/${hot.tokens})`,
    );
    const hotBefore =
      values.compare === undefined
        ? undefined
        : await measureHotTokenRss({ dir, serveArgs, tokens: HOT_TOKENS, root: values.compare });
    if (hotBefore)
      log(
        `RSS with ${hotBefore.tokens} distinct hot tokens, tokenscope-before: ${fmt(hotBefore.rssMB, 0)} MB (idle ${fmt(hotBefore.idleMB, 0)} MB)`,
      );

    writeFileSync(
      values.json,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          tokens: TOKENS,
          durationS: DURATION_S,
          quick,
          pinning: PINNING ?? null,
          rotateUs: ROTATE_US,
          tokenscopeForm: TYPESCRIPT ? "typescript" : "compiled",
          distinctAllowedTokens: DISTINCT_ALLOWED,
          rows,
          closedRuns,
          verified,
          revocation,
          hotTokens: hot,
          hotTokensBefore: hotBefore,
        },
        null,
        2,
      ) + "\n",
    );
    log(`# results written to ${values.json}`);
  } finally {
    for (const t of targets) await t.stop();
    await redis.stop();
  }
}

await main();
