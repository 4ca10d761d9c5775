// The `tokenscope` CLI as a child process, run as a person would.
import { spawnSync } from "node:child_process";

export const BIN = new URL("../../bin/tokenscope", import.meta.url).pathname;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(
  args: readonly string[],
  opts: {
    cwd?: string;
    input?: string;
    timeoutMs?: number;
    env?: NodeJS.ProcessEnv;
    /** Another build of the CLI (the image's compiled bin/tokenscope.js); this checkout's by default. */
    bin?: string;
  } = {},
): CliResult {
  const r = spawnSync(process.execPath, [opts.bin ?? BIN, ...args], {
    cwd: opts.cwd,
    input: opts.input,
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 20_000,
    env: opts.env ?? process.env,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
