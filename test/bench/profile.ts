// `node test/bench/profile.ts [--root DIR] [--seconds S] [--concurrency C]`: one tokenscope
// process under the bench's h2load mix with `node --cpu-prof`; prints where the profile lands and
// a flat top list (self time by function). For finding what to cut, not for figures.
// --rotate-us N: how long each body stays in h2load's file (see rotator.ts).
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readHmacKey } from "../../src/hmac-key.ts";
import { startRedis } from "../harness/redis.ts";
import { writeHmacKey } from "../harness/server.ts";
import { h2load } from "./h2load.ts";
import { cpuSeconds } from "./procs.ts";
import { rotateBodies } from "./rotator.ts";
import { delta, scrape, startTokenscope } from "./targets.ts";
import { mixBodies, seedTokens, serveArgsFor, writeScopes } from "./workload.ts";

const { values } = parseArgs({
  options: {
    root: { type: "string" },
    seconds: { type: "string", default: "8" },
    concurrency: { type: "string", default: "16" },
    tokens: { type: "string", default: "20000" },
    extra: { type: "string", multiple: true, default: [] },
    "node-options": { type: "string", default: "" },
    /** Node/V8 flags on the server's command line (for those NODE_OPTIONS refuses). */
    "node-args": { type: "string", default: "" },
    /** No profiler: only the req/s and CPU figures, e.g. to compare two checkouts (--root). */
    plain: { type: "boolean", default: false },
    "rotate-us": { type: "string", default: "1000" },
  },
});
const dir = mkdtempSync(join(tmpdir(), "tokenscope-prof-"));
const profDir = join(dir, "prof");
const TOKENS = Number(values.tokens);
const redis = await startRedis();
try {
  const keyFile = writeHmacKey(dir);
  await seedTokens({
    port: redis.port,
    key: readHmacKey(keyFile),
    count: TOKENS,
    revokedFrom: TOKENS - 1000,
  });
  const bodies = mixBodies(Math.min(10_000, TOKENS / 2), TOKENS - 1000);
  const prof = values.plain ? "" : `--cpu-prof --cpu-prof-dir=${profDir}`;
  process.env.NODE_OPTIONS = `${prof} ${values["node-options"]}`;
  const target = await startTokenscope({
    name: "prof",
    dir,
    root: values.root,
    nodeArgs: values["node-args"].split(" ").filter(Boolean),
    args: [
      ...serveArgsFor(redis.url, keyFile, writeScopes(join(dir, "scopes"))),
      "--workers=1",
      ...values.extra,
    ],
  });
  delete process.env.NODE_OPTIONS;
  const bodyFile = join(dir, "body.bin");
  writeFileSync(bodyFile, bodies[0] ?? Buffer.alloc(0));
  const c = Number(values.concurrency);
  const rotation = rotateBodies(bodyFile, bodies, Number(values["rotate-us"]));
  const countsBefore = await scrape(target);
  const cpuBefore = cpuSeconds(target.pid);
  const result = await h2load({
    port: target.grpcPort,
    bodyFile,
    clients: 4,
    streams: Math.max(1, c / 4),
    warmUpS: 1,
    durationS: Number(values.seconds),
    logFile: join(dir, "h2load.log"),
  });
  await rotation.stop();
  const counts = delta(await scrape(target), countsBefore);
  // Includes the 1 s warm-up: comparable between runs of this script, not with the bench's.
  const cpuUs = ((cpuSeconds(target.pid) - cpuBefore) / result.requests) * 1e6;
  await target.stop();
  process.stdout.write(
    `${result.rps.toFixed(0)} req/s, p99 ${result.p99Ms.toFixed(3)} ms, ~${cpuUs.toFixed(1)} us CPU/req, ${rotation.written} bodies written\n${JSON.stringify(counts)}\n`,
  );
  for (const file of values.plain ? [] : readdirSync(profDir)) {
    const profile = JSON.parse(readFileSync(join(profDir, file), "utf8")) as {
      nodes: {
        id: number;
        callFrame: { functionName: string; url: string; lineNumber: number };
        children?: number[];
      }[];
      samples: number[];
    };
    const self = new Map<number, number>();
    for (const s of profile.samples) self.set(s, (self.get(s) ?? 0) + 1);
    const byName = new Map<string, number>();
    for (const n of profile.nodes) {
      const f = n.callFrame;
      const name = `${f.functionName || "(anon)"} ${f.url.replace(/^.*node_modules\//, "").replace(/^.*\/src\//, "src/")}:${f.lineNumber}`;
      byName.set(name, (byName.get(name) ?? 0) + (self.get(n.id) ?? 0));
    }
    const total = profile.samples.length;
    const idle = byName.get("(idle) :-1") ?? 0;
    process.stdout.write(`${join(profDir, file)}: ${total} samples, busy ${total - idle}\n`);
    // Inclusive time of tokenscope's own functions (a function counted once per sample).
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const inclusive = new Map<string, number>();
    for (const [id, n] of self) {
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)?.callFrame;
        if (!f || !f.url.includes("/src/") || f.url.includes("node_modules")) continue;
        const name = `${f.functionName || "(anon)"} ${f.url.replace(/^.*\/src\//, "src/")}:${f.lineNumber}`;
        if (seen.has(name)) continue;
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + n);
      }
    }
    process.stdout.write("inclusive, tokenscope's own code:\n");
    for (const [name, n] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      process.stdout.write(`${((100 * n) / (total - idle)).toFixed(1).padStart(5)}%  ${name}\n`);
    }
    process.stdout.write("self:\n");
    const top = [...byName].filter(([k]) => k !== "(idle) :-1").sort((a, b) => b[1] - a[1]);
    for (const [name, n] of top.slice(0, 45)) {
      process.stdout.write(`${((100 * n) / (total - idle)).toFixed(1).padStart(5)}%  ${name}\n`);
    }
  }
} finally {
  await redis.stop();
}
