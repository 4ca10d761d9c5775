// A real nginx (Debian's package) per suite, on a free loopback port, running the example
// config deploy/examples/nginx/tokenscope.conf with only its addresses replaced. As the current
// user: single process, no daemon, pid, logs and temp files in its own directory.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.ts";

export const NGINX_EXAMPLE = new URL(
  "../../deploy/examples/nginx/tokenscope.conf",
  import.meta.url,
);
const NGINX_BIN = process.env.NGINX_BIN ?? "/usr/sbin/nginx";
const START_TIMEOUT_MS = 5000;

export interface NginxServer {
  readonly port: number;
  readonly url: string;
  /** The error log so far (for failure messages). */
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** The example config with its three addresses replaced; each must occur exactly once. */
export function renderExample(
  text: string,
  ports: { listen: number; tokenscope: number; app: number },
) {
  const replacements: [string, string][] = [
    ["server tokenscope:9191;", `server 127.0.0.1:${ports.tokenscope};`],
    ["server app:8080;", `server 127.0.0.1:${ports.app};`],
    ["listen 8000;", `listen 127.0.0.1:${ports.listen};`],
  ];
  let out = text;
  for (const [from, to] of replacements) {
    if (out.split(from).length !== 2)
      throw new Error(`example config: "${from}" is not there once`);
    out = out.replace(from, to);
  }
  return out;
}

function mainConfig(dir: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/tokenscope.conf;
}
`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

export async function startNginx(ports: { tokenscope: number; app: number }): Promise<NginxServer> {
  const dir = await mkdtemp(join(tmpdir(), "tokenscope-nginx-"));
  const listen = await freePort();
  const site = renderExample(await readFile(NGINX_EXAMPLE, "utf8"), { listen, ...ports });
  await writeFile(join(dir, "tokenscope.conf"), site);
  await writeFile(join(dir, "nginx.conf"), mainConfig(dir));
  const child = spawn(
    NGINX_BIN,
    ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));
  running.add(child);
  child.once("exit", () => running.delete(child));
  const errorLog = () => readFile(join(dir, "error.log"), "utf8").catch(() => "");
  const giveUpAt = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== undefined) {
      const missing = "code" in spawnError && spawnError.code === "ENOENT";
      throw missing
        ? new Error(`${NGINX_BIN} is not installed (apt-get install -y nginx)`)
        : spawnError;
    }
    if (child.exitCode !== null)
      throw new Error(`nginx exited during start:\n${output}\n${await errorLog()}`);
    if (await accepts(listen)) break;
    if (Date.now() > giveUpAt) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not listen on ${listen}:\n${output}\n${await errorLog()}`);
    }
    await sleep(20);
  }
  return {
    port: listen,
    url: `http://127.0.0.1:${listen}`,
    errorLog,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGQUIT");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
