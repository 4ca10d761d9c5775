// The container image, without Docker (no engine can run here): the Dockerfile's promises are
// checked as text, and the image's file set (what .dockerignore lets in) is run the way the
// image's ENTRYPOINT runs it, checking that it writes nothing outside its data folder and that
// SIGTERM drains and exits 0.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { freePort } from "../harness/ports.ts";
import { tempDir } from "../harness/server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const instructions = dockerfile
  .replaceAll(/\\\n/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"));

/** .dockerignore semantics for our allow-list: the last matching pattern wins. */
function inContext(path: string): boolean {
  const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  let included = true;
  for (const pattern of patterns) {
    const negated = pattern.startsWith("!");
    const body = negated ? pattern.slice(1) : pattern;
    const matches =
      body === "*" ||
      path === body.replace(/\/$/, "") ||
      (body.endsWith("/") && path.startsWith(body));
    if (matches) included = negated;
  }
  return included;
}

function copySources(): string[] {
  return instructions
    .filter((l) => l.startsWith("COPY ") && !l.includes("--from="))
    .flatMap((l) => l.split(/\s+/).slice(1, -1));
}

describe("Dockerfile", () => {
  it("builds in two stages on node:24-slim, with production dependencies only and no install scripts", () => {
    assert.ok(instructions.includes("ARG NODE_IMAGE=node:24-slim"));
    assert.equal(instructions.filter((l) => l.startsWith("FROM ${NODE_IMAGE}")).length, 2);
    assert.ok(instructions.some((l) => /npm ci --omit=dev --ignore-scripts/.test(l)));
  });

  it("runs as the numeric non-root user the Deployment expects", () => {
    const users = instructions.filter((l) => l.startsWith("USER "));
    assert.deepEqual(users, ["USER 10001:10001"]);
    const deployment = parse(readFileSync(join(ROOT, "deploy/deployment.yaml"), "utf8")) as {
      spec: { template: { spec: { securityContext: { runAsUser: number } } } };
    };
    assert.equal(deployment.spec.template.spec.securityContext.runAsUser, 10001);
  });

  it("starts node directly in exec form (SIGTERM reaches the app, no shell in between)", () => {
    const entrypoint = instructions.find((l) => l.startsWith("ENTRYPOINT "));
    assert.deepEqual(JSON.parse(entrypoint?.slice("ENTRYPOINT ".length) ?? "null"), [
      "node",
      "bin/tokenscope",
    ]);
    assert.deepEqual(JSON.parse(instructions.find((l) => l.startsWith("CMD "))?.slice(4) ?? ""), [
      "serve",
    ]);
  });

  it("exposes gRPC, metrics and the webhook", () => {
    assert.ok(instructions.includes("EXPOSE 9001 9090 9443"));
  });

  it("copies only what exists and what .dockerignore lets into the context", () => {
    const sources = copySources();
    assert.ok(sources.length >= 4);
    for (const source of [...sources, "package-lock.json"]) {
      assert.ok(existsSync(join(ROOT, source)), source);
      assert.ok(inContext(source.replace(/\/$/, "")), `${source} is in the build context`);
    }
  });

  // [path, in the build context?]
  const contextRows: [string, boolean][] = [
    ["src/main.ts", true],
    ["bin/tokenscope", true],
    ["deploy/examples/scopes/prod-reports-read.yaml", true],
    [".tokenscope/hmac.key", false],
    [".git/config", false],
    ["node_modules/ioredis/package.json", false],
    ["test/fixtures/token-vectors.json", false],
    [".env", false],
    ["charts/tokenscope/values.yaml", false],
  ];
  for (const [path, included] of contextRows) {
    it(`${included ? "sends" : "keeps out"} ${path}`, () => {
      assert.equal(inContext(path), included);
    });
  }
});

function snapshot(dir: string): Map<string, number> {
  const files = new Map<string, number>();
  for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (name.startsWith("node_modules")) continue;
    files.set(name, statSync(join(dir, name)).mtimeMs);
  }
  return files;
}

describe("the image's file set, run like the image", () => {
  it("writes nothing outside TOKENSCOPE_DATA_DIR, and SIGTERM drains and exits 0", async () => {
    const app = tempDir("image-app");
    for (const source of copySources().filter((s) => s !== "package.json")) {
      cpSync(join(ROOT, source), join(app, source), { recursive: true });
    }
    cpSync(join(ROOT, "package.json"), join(app, "package.json"));
    symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
    const dataDir = tempDir("image-data");
    const before = snapshot(app);
    const [grpc, http] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ["bin/tokenscope", "serve"], {
      cwd: app,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: "production",
        TOKENSCOPE_DATA_DIR: dataDir,
        TOKENSCOPE_GRPC_ADDR: `127.0.0.1:${grpc}`,
        TOKENSCOPE_HTTP_ADDR: `127.0.0.1:${http}`,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const giveUp = Date.now() + 30_000;
      let ready = false;
      while (!ready && Date.now() < giveUp) {
        ready = await fetch(`http://127.0.0.1:${http}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(ready, `ready; stderr: ${stderr}`);
      child.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /"msg":"draining","signal":"SIGTERM"/);
      assert.deepEqual(snapshot(app), before, "nothing written in the app folder");
      assert.ok(existsSync(join(dataDir, "hmac.key")), "the embedded store used the data folder");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
