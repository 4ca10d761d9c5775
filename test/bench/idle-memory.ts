// `node test/bench/idle-memory.ts [--compare DIR] [--rounds N]`: an idle `serve` (embedded file
// store, 100 scopes, one worker, no request yet): RSS, then V8's heap after a full GC, a few
// seconds after start. With --compare, another checkout's `serve` (say, main's) is measured in
// the same run, alternating with this one.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeHmacKey } from "../harness/server.ts";
import { rssBytes } from "./procs.ts";
import { startTokenscope } from "./targets.ts";
import { writeScopes } from "./workload.ts";

const { values } = parseArgs({
  options: {
    compare: { type: "string" },
    rounds: { type: "string", default: "3" },
  },
});
const HERE = fileURLToPath(new URL("../../", import.meta.url));
const PRELOAD = fileURLToPath(new URL("idle-memory-preload.ts", import.meta.url));
const GC_AFTER_MS = 3000;
const dir = mkdtempSync(join(tmpdir(), "tokenscope-idle-"));
const keyFile = writeHmacKey(dir);
const scopes = writeScopes(join(dir, "scopes"));
const roots: [string, string][] = [["this checkout", HERE]];
if (values.compare !== undefined) roots.push([values.compare, resolve(values.compare)]);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

for (let round = 0; round < Math.max(1, Number(values.rounds)); round++) {
  for (const [index, [name, root]] of roots.entries()) {
    const file = join(dir, `memory-${round}-${index}.json`);
    process.env.TOKENSCOPE_IDLE_MEMORY_FILE = file;
    process.env.TOKENSCOPE_IDLE_MEMORY_AFTER_MS = String(GC_AFTER_MS);
    const target = await startTokenscope({
      name: `idle-${round}`,
      dir,
      root,
      nodeArgs: ["--expose-gc", "--import", PRELOAD],
      args: [
        `--hmac-key-file=${keyFile}`,
        "--environment=bench",
        `--scopes=${scopes}`,
        `--data-dir=${join(dir, `data-${round}-${index}`)}`,
        "--workers=1",
      ],
    });
    try {
      await sleep(GC_AFTER_MS - 500);
      const idle = rssBytes(target.pid);
      let report: { before: NodeJS.MemoryUsage; after: NodeJS.MemoryUsage } | undefined;
      for (let i = 0; i < 100 && report === undefined; i++) {
        await sleep(100);
        try {
          report = JSON.parse(readFileSync(file, "utf8")) as typeof report;
        } catch {
          // not written yet
        }
      }
      if (report === undefined) throw new Error(`${name}: no memory report in ${file}`);
      const { after } = report;
      process.stdout.write(
        `${name}: idle RSS ${mb(idle)} MB; after a full GC: RSS ${mb(after.rss)} MB, heap used ${mb(after.heapUsed)} MB of ${mb(after.heapTotal)} MB, external ${mb(after.external)} MB\n`,
      );
    } finally {
      await target.stop();
    }
  }
}
