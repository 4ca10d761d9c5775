// A child process for test/integration/serve-without-envoy-protos.test.ts: records every module
// `serve` loads and every file it reads with readFileSync (how protobufjs reads .proto files),
// then imports the CLI (as bin/tokenscope does) and starts a real server. It prints
// {"grpcPort": N}, answers Checks, and on a line "report" on stdin prints what it loaded and stops.
import fs from "node:fs";
import { registerHooks } from "node:module";
import { createInterface } from "node:readline";

const loaded: string[] = [];
registerHooks({
  load(url, context, nextLoad) {
    loaded.push(url);
    return nextLoad(url, context);
  },
});
const files: string[] = [];
const readFileSync = fs.readFileSync;
(fs as { readFileSync: unknown }).readFileSync = function (this: unknown, ...args: unknown[]) {
  files.push(String(args[0]));
  return (readFileSync as (...a: unknown[]) => unknown).apply(this, args);
};

// Imported after the hooks, so that they see the whole graph.
await import("../../src/cli/main.ts");
const { startTestServer } = await import("./server.ts");
const server = await startTestServer({});
process.stdout.write(`${JSON.stringify({ grpcPort: server.grpcPort })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "report") {
    process.stdout.write(`${JSON.stringify({ loaded, files })}\n`);
    break;
  }
}
await server.stop({ delayMs: 0 });
