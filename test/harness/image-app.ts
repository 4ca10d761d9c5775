// The container image's /app, assembled without Docker (no engine runs here) from the Dockerfile's
// final stage: what it copies from the build context comes from the checkout; what it copies from
// the build stage is built with that stage's own command (`npm run build`, into a temp dir standing
// for the stage's /app); the deps stage's production node_modules is the checkout's node_modules,
// symlinked. That one holds the dev dependencies too, so `bareImports` lets a test check that the
// compiled code names none of them.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { builtinModules } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface DockerStage {
  readonly name: string | undefined;
  /** Instructions without comments, continuation lines joined. */
  readonly lines: string[];
}

export function dockerInstructions(dockerfile: string): string[] {
  return dockerfile
    .replaceAll(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

export function dockerStages(dockerfile: string): DockerStage[] {
  const stages: { name: string | undefined; lines: string[] }[] = [];
  for (const line of dockerInstructions(dockerfile)) {
    if (line.startsWith("FROM ")) {
      stages.push({ name: / AS (\S+)$/i.exec(line)?.[1], lines: [line] });
    } else {
      stages.at(-1)?.lines.push(line);
    }
  }
  return stages;
}

/** ["--from=build", "/app/dist/src", "./src"] → the stage, the sources and the destination. */
function parseCopy(line: string): { from: string | undefined; sources: string[]; dest: string } {
  const words = line.split(/\s+/).slice(1);
  const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
  const rest = words.filter((w) => !w.startsWith("--"));
  return { from, sources: rest.slice(0, -1), dest: rest.at(-1) ?? "" };
}

function jsonArray(stage: DockerStage, instruction: string): string[] {
  const line = stage.lines.findLast((l) => l.startsWith(`${instruction} `));
  return line === undefined ? [] : (JSON.parse(line.slice(instruction.length + 1)) as string[]);
}

export interface ImageApp {
  /** The folder standing for the image's /app (its WORKDIR). */
  readonly app: string;
  /** ENTRYPOINT + CMD, e.g. ["node", "bin/tokenscope.js", "serve"]. */
  readonly command: string[];
  /** The script node runs (absolute), e.g. <app>/bin/tokenscope.js. */
  readonly entry: string;
  /** Seconds `npm run build` took (0 when the image copies no build stage output). */
  readonly buildSeconds: number;
  /** The final stage's ENV (`ENV K=V ...`, unquoted values), e.g. NODE_OPTIONS. */
  readonly env: Readonly<Record<string, string>>;
}

function stageEnv(stage: DockerStage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of stage.lines.filter((l) => l.startsWith("ENV "))) {
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const eq = pair.indexOf("=");
      if (eq <= 0 || /["']/.test(pair)) throw new Error(`Dockerfile: not reproduced here: ${line}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** The build stage's `npm run build`, run in `root` with its output under `stageApp/dist`. */
function runBuild(root: string, stageApp: string): void {
  const r = spawnSync("npm", ["run", "build", "--", "--outDir", join(stageApp, "dist")], {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.status !== 0) {
    throw new Error(
      `npm run build failed (${r.status}): ${r.error?.message ?? ""}\n${r.stdout}\n${r.stderr}`,
    );
  }
}

/** Assembles the final stage of `root`'s Dockerfile under `into` (a new, empty folder). */
export function assembleImageApp(into: string, root = REPO_ROOT): ImageApp {
  const stages = dockerStages(readFileSync(join(root, "Dockerfile"), "utf8"));
  const final = stages.at(-1);
  if (final === undefined) throw new Error("Dockerfile: no FROM");
  const workdir = final.lines.findLast((l) => l.startsWith("WORKDIR "))?.slice(8);
  if (workdir !== "/app") throw new Error(`Dockerfile: final WORKDIR ${String(workdir)}, not /app`);
  const app = join(into, "app");
  const buildApp = join(into, "build-stage");
  mkdirSync(app, { recursive: true });
  let buildSeconds = 0;
  for (const line of final.lines.filter((l) => l.startsWith("COPY "))) {
    const { from, sources, dest } = parseCopy(line);
    for (const source of sources) {
      const target = dest.endsWith("/") ? join(app, dest, basename(source)) : join(app, dest);
      mkdirSync(dirname(target), { recursive: true });
      if (from === undefined) {
        cpSync(join(root, source), target, { recursive: true });
        continue;
      }
      const stage = stages.find((s) => s.name === from);
      if (
        stage?.lines.some((l) => /^RUN .*npm ci --omit=dev/.test(l)) &&
        source === "/app/node_modules"
      ) {
        symlinkSync(join(root, "node_modules"), target);
      } else if (stage?.lines.some((l) => /^RUN .*npm run build/.test(l))) {
        if (!existsSync(buildApp)) {
          const t = performance.now();
          runBuild(root, buildApp);
          buildSeconds = (performance.now() - t) / 1000;
        }
        if (!source.startsWith("/app/dist/")) throw new Error(`not reproduced here: ${line}`);
        cpSync(join(buildApp, source.slice("/app/".length)), target, { recursive: true });
      } else {
        throw new Error(`not reproduced here: ${line}`);
      }
    }
  }
  const command = [...jsonArray(final, "ENTRYPOINT"), ...jsonArray(final, "CMD")];
  if (command[0] !== "node" || command[1] === undefined) {
    throw new Error(`Dockerfile: ENTRYPOINT is not node SCRIPT: ${JSON.stringify(command)}`);
  }
  return { app, command, entry: join(app, command[1]), buildSeconds, env: stageEnv(final) };
}

/** Package names the JavaScript under `dir` imports (static and dynamic), builtins aside. */
export function bareImports(dir: string): Set<string> {
  const builtins = new Set(builtinModules);
  const found = new Set<string>();
  for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!name.endsWith(".js")) continue;
    const text = readFileSync(join(dir, name), "utf8");
    for (const m of text.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire(?:\.resolve)?\(\s*)["']([^"'./][^"']*)["']/g,
    )) {
      const spec = m[1] ?? "";
      if (spec.startsWith("node:") || builtins.has(spec)) continue;
      const parts = spec.split("/");
      found.add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? spec));
    }
  }
  return found;
}
