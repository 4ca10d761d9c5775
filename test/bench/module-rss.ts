// `node test/bench/module-rss.ts`: what each runtime dependency costs a process just by being
// loaded. For every package, a fresh `node` imports it alone, collects garbage and reports RSS and
// live heap, beside a bare `node` in the same run. The floor under every memory figure of `serve`.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const manifest = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
) as {
  dependencies: Record<string, string>;
};

function measure(specifier: string | undefined): { rssMB: number; heapMB: number } {
  const load = specifier === undefined ? "" : `await import(${JSON.stringify(specifier)});`;
  const script = `${load}
globalThis.gc(); await new Promise((r) => setTimeout(r, 200)); globalThis.gc();
const m = process.memoryUsage();
process.stdout.write(JSON.stringify({ rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20 }));`;
  const out = execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
    cwd: new URL("../../", import.meta.url),
    encoding: "utf8",
  });
  return JSON.parse(out) as { rssMB: number; heapMB: number };
}

const bare = measure(undefined);
process.stdout.write(
  `# node ${process.version}: each line is one fresh process; +MB against a bare node\n`,
);
process.stdout.write(
  `${"(bare node)".padEnd(28)} RSS ${bare.rssMB.toFixed(0).padStart(4)} MB   heap ${bare.heapMB.toFixed(1).padStart(5)} MB\n`,
);
for (const name of Object.keys(manifest.dependencies).sort()) {
  const m = measure(name);
  process.stdout.write(
    `${name.padEnd(28)} RSS ${m.rssMB.toFixed(0).padStart(4)} MB (+${(m.rssMB - bare.rssMB).toFixed(0)})   heap ${m.heapMB.toFixed(1).padStart(5)} MB (+${(m.heapMB - bare.heapMB).toFixed(1)})\n`,
  );
}
