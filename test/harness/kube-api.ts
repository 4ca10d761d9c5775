// A stand-in Kubernetes API server for the TokenScope resource, on loopback over HTTPS (a
// self-signed certificate from openssl, trusted through the kubeconfig it writes) with a bearer
// token. It speaks the real wire protocol: paged LISTs with resourceVersion, chunked WATCH
// streams of newline-delimited ADDED/MODIFIED/DELETED/BOOKMARK events, ERROR 410 (or a plain 410)
// on a too-old resourceVersion, timeoutSeconds, and merge-patch on the status subresource with
// resourceVersion preconditions (409). Faults: cut watches, slow/failing lists, silent watches
// (open, sending nothing), stop/start on the same port. Every request is recorded.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.ts";
import { tempDir } from "./server.ts";
import {
  API_VERSION,
  KubeApiState,
  StatusError,
  type Obj,
  type StoredEvent,
} from "./kube-api-state.ts";

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
  readonly body: unknown;
  status: number;
  readonly at: number;
}

interface Watch {
  readonly res: ServerResponse;
  readonly namespace: string | undefined;
  /** Dead: a half-open connection; nothing it would be sent ever arrives. */
  dead: boolean;
}

const PREFIX = "/apis/tokenscope.dev/v1alpha1";
const ROUTE =
  /^\/apis\/tokenscope\.dev\/v1alpha1(?:\/namespaces\/([a-z0-9-]+))?\/tokenscopes(?:\/([a-z0-9.-]+)(\/status)?)?$/;

let tls: { cert: string; key: string } | undefined;
function selfSignedCert(): { cert: string; key: string } {
  if (tls) return tls;
  const dir = tempDir("kube-tls");
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
      .concat(["-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"])
      .concat(["-addext", "subjectAltName=IP:127.0.0.1"]),
    { stdio: "ignore" },
  );
  tls = { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
  return tls;
}

export class TestKubeApi {
  readonly state = new KubeApiState();
  readonly requests: RecordedRequest[] = [];
  readonly kubeconfig: string;
  readonly port: number;
  readonly token = randomBytes(16).toString("hex");
  /** How often watches that asked for bookmarks get one. */
  bookmarkIntervalMs = 1000;
  /** Fail this many of the next lists with 500. */
  failLists = 0;
  /** Fail this many of the next status PATCHes with 500. */
  failPatches = 0;
  /** Delay every list by this long. */
  listDelayMs = 0;
  /** Answer a too-old watch with a plain HTTP 410 instead of 200 + an ERROR event. */
  goneAsHttpStatus = false;
  #silent = false;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #watches = new Set<Watch>();
  readonly #pages = new Map<string, { items: Obj[]; rv: number }>();

  private constructor(port: number, kubeconfig: string) {
    this.port = port;
    this.kubeconfig = kubeconfig;
    this.state.onEvent((e) => {
      for (const w of this.#watches) this.#send(w, e);
    });
  }

  static async start(): Promise<TestKubeApi> {
    const port = await freePort();
    const { cert } = selfSignedCert();
    const kubeconfig = join(tempDir("kubeconfig"), "config");
    const api = new TestKubeApi(port, kubeconfig);
    writeFileSync(kubeconfig, api.#kubeconfigYaml(cert), { mode: 0o600 });
    await api.start();
    return api;
  }

  #kubeconfigYaml(cert: string): string {
    const ca = Buffer.from(cert).toString("base64");
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      `- name: test\n  cluster:\n    server: https://127.0.0.1:${this.port}\n    certificate-authority-data: ${ca}`,
      "users:",
      `- name: test\n  user:\n    token: ${this.token}`,
      "contexts:",
      "- name: test\n  context:\n    cluster: test\n    user: test",
      "current-context: test",
      "",
    ].join("\n");
  }

  async start(): Promise<void> {
    const server = createServer(selfSignedCert(), (req, res) => void this.#handle(req, res));
    server.on("connection", (s: Socket) => {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", resolve);
    });
    this.#server = server;
  }

  /** Down: refuses connections until start(); every open connection is dropped. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const s of this.#sockets) s.destroy();
    this.#watches.clear();
    await closed;
  }

  /** Drops every watch connection (TCP reset mid-stream), as a load balancer or restart does. */
  cutWatches(): number {
    const n = this.#watches.size;
    for (const w of [...this.#watches]) {
      this.#watches.delete(w);
      w.res.socket?.destroy();
    }
    return n;
  }

  /** Open watches stay open but send nothing more, ever (a half-open connection); new watches
   * get their 200 and then nothing, until speak(). */
  goSilent(): void {
    this.#silent = true;
    for (const w of this.#watches) w.dead = true;
  }

  speak(): void {
    this.#silent = false;
  }

  /** A raw line on every live watch: garbage, unknown types, odd objects. */
  injectLine(line: string): void {
    for (const w of this.#watches) if (!w.dead && !w.res.writableEnded) w.res.write(`${line}\n`);
  }

  get openWatches(): number {
    return this.#watches.size;
  }

  apply(manifest: Record<string, unknown>): Obj {
    return this.state.apply(manifest);
  }

  delete(namespace: string, name: string): boolean {
    return this.state.delete(namespace, name);
  }

  patches(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "PATCH");
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://127.0.0.1");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    const record: RecordedRequest = {
      method: req.method ?? "",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers["content-type"],
      body,
      status: 0,
      at: Date.now(),
    };
    this.requests.push(record);
    const reply = (status: number, payload: unknown) => {
      record.status = status;
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(payload));
    };
    try {
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        throw new StatusError(401, "Unauthorized", "Unauthorized");
      }
      const m = ROUTE.exec(url.pathname);
      if (!m)
        throw new StatusError(404, "NotFound", "the server could not find the requested resource");
      const [, namespace, name, status] = m;
      const watch = ["1", "true"].includes(url.searchParams.get("watch") ?? "");
      if (req.method === "GET" && name === undefined && watch) {
        record.status = 200;
        this.#watch(url.searchParams, namespace, res, record);
        return;
      }
      if (req.method === "GET" && name === undefined) {
        reply(200, await this.#list(url.searchParams, namespace));
        return;
      }
      if (req.method === "GET" && namespace && name && !status) {
        const obj = this.state.get(namespace, name);
        if (!obj)
          throw new StatusError(404, "NotFound", `tokenscopes.tokenscope.dev "${name}" not found`);
        reply(200, obj);
        return;
      }
      if (req.method === "PATCH" && namespace && name && status) {
        if (record.contentType !== "application/merge-patch+json") {
          throw new StatusError(
            415,
            "UnsupportedMediaType",
            `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json`,
          );
        }
        if (this.failPatches > 0) {
          this.failPatches--;
          throw new StatusError(500, "InternalError", "etcdserver: leader changed");
        }
        reply(200, this.state.patchStatus(namespace, name, body));
        return;
      }
      throw new StatusError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
      );
    } catch (err) {
      const e =
        err instanceof StatusError ? err : new StatusError(500, "InternalError", String(err));
      reply(e.code, e.toStatus());
    }
  }

  async #list(query: URLSearchParams, namespace: string | undefined) {
    if (this.listDelayMs > 0) await sleep(this.listDelayMs);
    if (this.failLists > 0) {
      this.failLists--;
      throw new StatusError(500, "InternalError", "etcdserver: request timed out");
    }
    const limit = Number(query.get("limit") ?? "0");
    const token = query.get("continue");
    let page: { items: Obj[]; rv: number };
    let offset = 0;
    if (token) {
      const { id, at } = JSON.parse(Buffer.from(token, "base64").toString()) as {
        id: string;
        at: number;
      };
      const snapshot = this.#pages.get(id);
      if (!snapshot || snapshot.rv < this.state.compactedRv) {
        throw new StatusError(
          410,
          "Expired",
          "The provided continue parameter is too old to display a consistent list result.",
        );
      }
      page = snapshot;
      offset = at;
    } else {
      page = { items: this.state.list(namespace), rv: this.state.resourceVersion };
    }
    const end = limit > 0 ? offset + limit : page.items.length;
    let next: string | undefined;
    if (end < page.items.length) {
      const id = token
        ? (JSON.parse(Buffer.from(token, "base64").toString()) as { id: string }).id
        : randomBytes(6).toString("hex");
      this.#pages.set(id, page);
      next = Buffer.from(JSON.stringify({ id, at: end })).toString("base64");
    }
    return {
      apiVersion: API_VERSION,
      kind: "TokenScopeList",
      metadata: { resourceVersion: String(page.rv), ...(next ? { continue: next } : {}) },
      items: page.items.slice(offset, end),
    };
  }

  #watch(
    query: URLSearchParams,
    namespace: string | undefined,
    res: ServerResponse,
    record: RecordedRequest,
  ): void {
    const rvText = query.get("resourceVersion") ?? "";
    let backlog: StoredEvent[];
    if (rvText === "" || rvText === "0") {
      // "Any" / "most recent": the current objects as ADDED, then changes.
      backlog = this.state
        .list(namespace)
        .map((object) => ({ rv: Number(object.metadata.resourceVersion), type: "ADDED", object }));
    } else {
      try {
        backlog = this.state.since(Number(rvText));
      } catch (err) {
        const e = err as StatusError;
        if (this.goneAsHttpStatus) {
          record.status = 410;
          res
            .writeHead(410, { "content-type": "application/json" })
            .end(JSON.stringify(e.toStatus()));
          return;
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(`${JSON.stringify({ type: "ERROR", object: e.toStatus() })}\n`);
        return;
      }
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.flushHeaders();
    const timers: NodeJS.Timeout[] = [];
    const w: Watch = { res, namespace, dead: this.#silent };
    this.#watches.add(w);
    res.on("close", () => {
      for (const t of timers) clearTimeout(t);
      this.#watches.delete(w);
    });
    for (const e of backlog) this.#send(w, e);
    if (query.get("allowWatchBookmarks") === "true") {
      const bookmark = () => {
        if (w.res.writableEnded) return;
        if (!w.dead) {
          const object = {
            kind: "TokenScope",
            apiVersion: API_VERSION,
            metadata: { resourceVersion: String(this.state.resourceVersion) },
          };
          res.write(`${JSON.stringify({ type: "BOOKMARK", object })}\n`);
        }
        timers.push(setTimeout(bookmark, this.bookmarkIntervalMs));
      };
      timers.push(setTimeout(bookmark, this.bookmarkIntervalMs));
    }
    const timeout = Number(query.get("timeoutSeconds") ?? "0");
    if (timeout > 0) {
      timers.push(
        setTimeout(() => {
          // A clean end of the chunked stream; a dead connection never ends.
          if (!w.dead) {
            this.#watches.delete(w);
            res.end();
          }
        }, timeout * 1000),
      );
    }
  }

  #send(w: Watch, e: StoredEvent): void {
    if (
      w.dead ||
      w.res.writableEnded ||
      (w.namespace !== undefined && e.object.metadata.namespace !== w.namespace)
    )
      return;
    w.res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
  }
}

export { PREFIX as KUBE_API_PREFIX };
