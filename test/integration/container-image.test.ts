// The container image, without Docker (no engine can run here): the Dockerfile's promises are
// checked as text, and the image's /app is assembled from its final stage (the compiled JavaScript
// of `npm run build`, test/harness/image-app.ts) and run the way the image's ENTRYPOINT runs it:
// on the embedded defaults, alone and with --workers 2, answering health and gRPC Checks, writing
// nothing outside its data folder, draining on SIGTERM.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "yaml";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { checkClient } from "../harness/check-client.ts";
import {
  assembleImageApp,
  bareImports,
  dockerInstructions,
  dockerStages,
  REPO_ROOT as ROOT,
  type ImageApp,
} from "../harness/image-app.ts";
import { freePort } from "../harness/ports.ts";
import { tempDir } from "../harness/server.ts";
import { runCli } from "../harness/cli.ts";

const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const instructions = dockerInstructions(dockerfile);
const stages = dockerStages(dockerfile);

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
  it("builds in three stages on node:24-slim, with production dependencies only and no install scripts", () => {
    assert.ok(instructions.includes("ARG NODE_IMAGE=node:24-slim"));
    assert.equal(instructions.filter((l) => l.startsWith("FROM ${NODE_IMAGE}")).length, 3);
    assert.ok(instructions.some((l) => /npm ci --omit=dev --ignore-scripts/.test(l)));
    for (const l of instructions.filter((i) => /^RUN .*npm ci/.test(i))) {
      assert.match(l, /--ignore-scripts/);
    }
  });

  it("compiles in a build stage and ships its JavaScript, not the TypeScript sources", () => {
    const build = stages.find((s) => s.name === "build");
    assert.ok(build?.lines.includes("RUN npm run build"));
    const final = stages.at(-1)?.lines ?? [];
    const copies = final.filter((l) => l.startsWith("COPY "));
    assert.ok(copies.includes("COPY --from=build /app/dist/src ./src"));
    assert.ok(copies.includes("COPY --from=build /app/dist/bin ./bin"));
    // Nothing else from the build stage (its node_modules holds the dev dependencies).
    assert.equal(copies.filter((l) => l.includes("--from=build")).length, 2);
    assert.deepEqual(
      copies.filter((l) => !l.includes("--from=")),
      ["COPY package.json ./", "COPY deploy/examples/scopes ./deploy/examples/scopes"],
    );
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
      "bin/tokenscope.js",
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
    ["bin/tokenscope.ts", true],
    ["tsconfig.build.json", true],
    ["dist/src/main.js", false],
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

interface Running {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly stderr: () => string;
  stop(): Promise<number | null>;
}

async function waitFor(what: string, probe: () => Promise<boolean>, run: Running): Promise<void> {
  const giveUp = Date.now() + 30_000;
  while (!(await probe())) {
    if (Date.now() > giveUp) assert.fail(`${what} within 30 s; stderr: ${run.stderr()}`);
    await sleep(100);
  }
}

const httpOk = (url: string) =>
  fetch(url).then(
    (r) => r.ok,
    () => false,
  );

describe("the image's /app, compiled and run like the image", () => {
  let image: ImageApp;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    image = assembleImageApp(tempDir("image"));
    dataDir = tempDir("image-data");
    // A shorter wait for endpoint removal than the 5 s default: the drain is the same.
    env = {
      PATH: process.env.PATH,
      // The final stage's ENV (NODE_ENV, NODE_OPTIONS; TOKENSCOPE_DATA_DIR replaced here).
      ...image.env,
      TOKENSCOPE_DATA_DIR: dataDir,
      TOKENSCOPE_SHUTDOWN_DELAY: "1s",
    };
  });

  /** ENTRYPOINT + CMD (or `args` in place of CMD), node being this test's node. */
  async function start(args?: string[]): Promise<Running> {
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const [, script, ...cmd] = image.command;
    const child = spawn(process.execPath, [script ?? "", ...(args ?? cmd)], {
      cwd: image.app,
      env: {
        ...env,
        TOKENSCOPE_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
        TOKENSCOPE_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    return {
      grpcPort,
      httpPort,
      stderr: () => stderr,
      stop: async () => {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    };
  }

  /** A token from the image's own CLI, in the image's embedded store. */
  function issueToken(): string {
    const r = runCli(
      [
        "token",
        "issue",
        "--scope",
        "prod/reports-read",
        "--owner",
        "image-test",
        "--ttl",
        "1h",
      ].concat(["-o", "json"]),
      { cwd: image.app, env, bin: image.entry },
    );
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { token: string }).token;
  }

  const request = (token: string, namespace: string) =>
    buildCheckRequest({
      method: "GET",
      path: "/v1/reports/2026",
      host: "reports.prod.svc.cluster.local",
      namespace,
      token,
    });

  it("holds compiled JavaScript only, importing production dependencies only", () => {
    assert.equal(image.entry, join(image.app, "bin/tokenscope.js"));
    assert.ok(existsSync(join(image.app, "src/main.js")));
    const files = readdirSync(image.app, { recursive: true, encoding: "utf8" }).filter(
      (f) => !f.startsWith("node_modules"),
    );
    assert.deepEqual(
      files.filter((f) => f.endsWith(".ts")),
      [],
    );
    assert.ok(!files.some((f) => f.startsWith("test")), "no test code");
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const imported = [
      ...bareImports(join(image.app, "src")),
      ...bareImports(join(image.app, "bin")),
    ];
    assert.ok(imported.includes("@grpc/grpc-js"), `found ${imported.join(", ")}`);
    for (const name of imported) assert.ok(name in pkg.dependencies, `${name} is a dependency`);
  });

  it("serves on the embedded defaults: /healthz, gRPC Checks allowed and denied, SIGTERM drains, nothing written outside the data folder", async () => {
    const before = snapshot(image.app);
    const run = await start();
    try {
      await waitFor("/readyz 200", () => httpOk(`http://127.0.0.1:${run.httpPort}/readyz`), run);
      assert.ok(await httpOk(`http://127.0.0.1:${run.httpPort}/healthz`));
      const token = issueToken();
      const client = checkClient(run.grpcPort);
      try {
        const allowed = await client.check(request(token, "prod"), 5000);
        assert.equal(allowed.status?.code, 0, JSON.stringify(allowed.status));
        assert.ok(allowed.ok_response);
        const denied = await client.check(request(token, "staging"), 5000);
        assert.equal(denied.status?.code, 7);
        assert.equal(denied.status.message, "namespace_mismatch");
      } finally {
        client.close();
      }
    } finally {
      assert.equal(await run.stop(), 0, run.stderr());
    }
    assert.match(run.stderr(), /"msg":"draining","signal":"SIGTERM"/);
    assert.deepEqual(snapshot(image.app), before, "nothing written in the app folder");
    assert.ok(existsSync(join(dataDir, "hmac.key")), "the embedded store used the data folder");
  });

  it("serves with --workers 2: both workers ready, Checks answered on the shared port, SIGTERM drains", async () => {
    const run = await start(["serve", "--workers", "2"]);
    try {
      await waitFor("/readyz 200", () => httpOk(`http://127.0.0.1:${run.httpPort}/readyz`), run);
      const metrics = await (await fetch(`http://127.0.0.1:${run.httpPort}/metrics`)).text();
      assert.match(metrics, /^tokenscope_workers\{state="ready"\} 2$/m);
      const token = issueToken();
      // A connection per Check: cluster hands connections to the workers in turn.
      for (let i = 0; i < 4; i++) {
        const client = checkClient(run.grpcPort);
        const res = await client.check(request(token, "prod"), 5000);
        client.close();
        assert.equal(res.status?.code, 0, JSON.stringify(res.status));
      }
    } finally {
      assert.equal(await run.stop(), 0, run.stderr());
    }
    const workers = new Set(
      [...run.stderr().matchAll(/"msg":"tokenscope serving".*"worker":(\d+)/g)].map((m) => m[1]),
    );
    assert.equal(workers.size, 2, run.stderr());
  });
});
