// `serve` answers Envoy's Check without loading Envoy's protos: its CheckRequest reader and
// CheckResponse writer are hand-written (src/envoy/check-*-wire.ts) and its service definition is
// built without proto-loader (src/envoy/authorization-service.ts). A real server runs in a child
// process that records every module it loads and every file it reads; the test talks to it as
// Envoy would (a client on Envoy's official protos), then reads the record. Re-adding an import of
// protos.ts or of @grpc/proto-loader anywhere on serve's path fails here. grpc-health-check keeps
// its own proto-loader (a nested copy) and its small health.proto: that is expected, and seeing
// it read proves the record would show Envoy's .proto files if they were read.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, sep } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { checkClient } from "../harness/check-client.ts";
import { checkRequestFixture } from "../harness/fixtures.ts";

const require = createRequire(import.meta.url);
const packageDir = (name: string) =>
  realpathSync(dirname(require.resolve(`${name}/package.json`))) + sep;
const PROTO_LOADER = packageDir("@grpc/proto-loader");
const ENVOY_TREE = packageDir("@grpc/grpc-js-xds") + "deps" + sep;
const CHILD = fileURLToPath(new URL("../harness/serve-loads.ts", import.meta.url));

interface Report {
  loaded: string[];
  files: string[];
}

test("serve answers Checks without loading Envoy's protos or proto-loader", async () => {
  const child = spawn(process.execPath, [CHILD], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<unknown> => {
    const { value, done } = await lines.next();
    if (done === true) throw new Error("the child ended early");
    return JSON.parse(value) as unknown;
  };
  try {
    const { grpcPort } = (await next()) as { grpcPort: number };
    const client = checkClient(grpcPort);
    try {
      // An empty request and Istio's request with a malformed token: explicit denies, written by
      // the hand encoder and decoded here by proto-loader.
      const missing = await client.check({});
      assert.equal(missing.status?.code, 16);
      assert.equal(
        missing.denied_response?.body,
        JSON.stringify({
          error: "no bearer token in the authorization header",
          reason: "missing_token",
        }),
      );
      const malformed = await client.check(
        checkRequestFixture("istio-sidecar-get.json", "tks_prod_not-a-token"),
      );
      assert.equal(malformed.status?.message, "malformed_token");
    } finally {
      client.close();
    }
    child.stdin.write("report\n");
    const { loaded, files } = (await next()) as Report;
    const paths = loaded.map((url) => (url.startsWith("file:") ? fileURLToPath(url) : url));

    assert.ok(
      paths.some((p) => p.endsWith("src/envoy/grpc-server.ts")),
      "the record holds serve's graph",
    );
    assert.ok(paths.some((p) => p.endsWith("src/envoy/authorization-service.ts")));
    assert.deepEqual(
      paths.filter((p) => p.endsWith("src/envoy/protos.ts")),
      [],
    );
    assert.deepEqual(
      paths.filter((p) => p.startsWith(PROTO_LOADER)),
      [],
    );
    assert.ok(
      files.some((f) => f.endsWith("health.proto")),
      "protobufjs' reads are recorded",
    );
    assert.deepEqual(
      files.filter((f) => f.endsWith(".proto") && !f.endsWith(`${sep}health.proto`)),
      [],
      "no other .proto file is read",
    );
    assert.deepEqual(
      files.filter((f) => realpathOrSelf(f).startsWith(ENVOY_TREE)),
      [],
    );
  } finally {
    child.stdin.end();
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
  }
});

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
