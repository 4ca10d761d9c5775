// Starts the real tokenscope server in-process, with the real stores, on free loopback ports.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_REDIS_DEADLINE, serveConfig } from "../../src/config.ts";
import { parseDuration } from "../../src/domain/duration.ts";
import { serve, type RunningServer } from "../../src/main.ts";
import { createLogger, type Logger } from "../../src/observability/logger.ts";
import { openBackends } from "../../src/backends.ts";
import { tokenServiceFor } from "../../src/tokens/token-service.ts";

export const FIXTURE_SCOPES = new URL("../fixtures/scopes/", import.meta.url).pathname;

export interface TestServer extends RunningServer {
  readonly hmacKeyFile: string;
  readonly dataDir: string;
  readonly logLines: string[];
  readonly args: string[];
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tokenscope-${prefix}-`));
}

export function writeHmacKey(dir: string): string {
  const file = join(dir, "hmac.key");
  writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600 });
  return file;
}

/** Logs go to memory so tests can assert what was (and was not) written. */
export function memoryLogger(lines: string[]): Logger {
  return createLogger({ level: "debug", write: (line) => lines.push(line) });
}

export async function startTestServer(opts: {
  redisUrl?: string;
  scopes?: string;
  environment?: string;
  extraArgs?: string[];
  hmacKeyFile?: string;
  /**
   * Returns only once the server is ready (the store answered, the scopes loaded), as a mesh
   * sends nothing before /readyz: on a loaded machine the first Redis connection can time out
   * its ready check and reconnect, and a check meanwhile fails closed. On by default with Redis
   * and file scopes; off to start against a Redis that is down, or scopes still to come.
   */
  waitReady?: boolean;
}): Promise<TestServer> {
  const dir = tempDir("server");
  const hmacKeyFile = opts.hmacKeyFile ?? writeHmacKey(dir);
  const args = [
    "--grpc-addr=127.0.0.1:0",
    "--http-addr=127.0.0.1:0",
    `--scopes=${opts.scopes ?? FIXTURE_SCOPES}`,
    `--environment=${opts.environment ?? "prod"}`,
    `--hmac-key-file=${hmacKeyFile}`,
    `--data-dir=${join(dir, "data")}`,
    ...(opts.redisUrl
      ? [`--redis-url=${opts.redisUrl}`, `--redis-prefix={ts-${randomBytes(4).toString("hex")}}:`]
      : []),
    ...(opts.extraArgs ?? []),
  ];
  const logLines: string[] = [];
  const server = await serve(serveConfig(args, {}), memoryLogger(logLines));
  if (opts.waitReady ?? (opts.redisUrl !== undefined && opts.scopes !== "kubernetes")) {
    const giveUpAt = Date.now() + 15_000;
    while (!server.ready()) {
      if (Date.now() > giveUpAt) {
        await server.stop();
        throw new Error(`the test server never turned ready:\n${logLines.join("")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return { ...server, hmacKeyFile, dataDir: join(dir, "data"), logLines, args };
}

/** A second connection to the server's store and scopes, as the CLI would open them. */
export async function openServerBackends(server: TestServer) {
  const logger = createLogger({ level: "error", write: () => undefined });
  // The CLI's store deadline, not the server's: these are operator actions.
  const config = {
    ...serveConfig(server.args, {}),
    redisDeadlineMs: parseDuration(CLI_REDIS_DEADLINE) ?? 2000,
  };
  const backends = await openBackends(config, logger, { waitForStoreMs: 3000 });
  const tokens = tokenServiceFor(backends, config.environment, logger);
  return { ...backends, tokens, close: () => backends.close() };
}
