// HTTP to the Kubernetes API with a deadline on everything: a plain request (list, patch) and a
// watch stream split into lines. Neither ever rejects on an HTTP status; callers read it.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import type { OutgoingHttpHeaders } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConnection } from "./kube-config.ts";

export interface KubeResponse {
  readonly status: number;
  /** The parsed JSON body, or undefined when it was empty or not JSON. */
  readonly body: unknown;
}

export interface KubeRequest {
  readonly method: "GET" | "PATCH";
  /** Path and query, e.g. /apis/tokenscope.dev/v1alpha1/tokenscopes?limit=500 */
  readonly path: string;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly timeoutMs: number;
  /** Aborts the request early (shutdown). */
  readonly signal?: AbortSignal;
}

/** A watch line longer than this is not an event we could use; the stream is dropped. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** TCP keepalive probes notice a peer that vanished without a FIN (client-go does the same). */
const KEEPALIVE_MS = 30_000;

function headersOf(opts: RequestOptions): OutgoingHttpHeaders {
  return opts.headers && !Array.isArray(opts.headers) ? (opts.headers as OutgoingHttpHeaders) : {};
}

async function open(
  conn: KubeConnection,
  method: string,
  path: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<ClientRequest> {
  const opts = await conn.requestOptions();
  const url = new URL(conn.server + path);
  const send = url.protocol === "http:" ? httpRequest : httpsRequest;
  const req = send(url, {
    ...opts,
    method,
    headers: { ...headersOf(opts), accept: "application/json", ...headers },
    signal,
  });
  req.on("socket", (socket) => socket.setKeepAlive(true, KEEPALIVE_MS));
  return req;
}

function readBody(res: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("error", reject);
    res.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(text === "" ? undefined : (JSON.parse(text) as unknown));
      } catch {
        resolve(undefined);
      }
    });
  });
}

/** One request and its whole JSON answer within timeoutMs, or a rejection saying why not. */
export async function kubeRequest(conn: KubeConnection, r: KubeRequest): Promise<KubeResponse> {
  const deadline = AbortSignal.timeout(r.timeoutMs);
  const signal = r.signal ? AbortSignal.any([deadline, r.signal]) : deadline;
  const payload = r.body === undefined ? undefined : JSON.stringify(r.body);
  const headers: Record<string, string> = payload
    ? { "content-type": r.contentType ?? "application/json" }
    : {};
  const req = await open(conn, r.method, r.path, headers, signal);
  return await new Promise<KubeResponse>((resolve, reject) => {
    req.on("error", (err) =>
      reject(deadline.aborted ? new Error(`no answer within ${r.timeoutMs} ms`) : err),
    );
    req.on("response", (res) => {
      readBody(res).then((body) => resolve({ status: res.statusCode ?? 0, body }), reject);
    });
    req.end(payload);
  });
}

export type WatchEnd =
  | { readonly kind: "closed" }
  | { readonly kind: "status"; readonly status: number; readonly body: unknown }
  | { readonly kind: "error"; readonly error: Error };

/**
 * A watch request whose 200 body is handed over line by line (one JSON event per line). Resolves
 * when the stream ends for any reason, never rejects; `signal` aborts it at any time, including
 * before the response headers arrive (client-node's Watch cannot: its controller comes back
 * only once fetch has resolved).
 */
export async function watchLines(
  conn: KubeConnection,
  path: string,
  opts: {
    signal: AbortSignal;
    headerTimeoutMs: number;
    /** The watch was accepted (200); events follow as they happen. */
    onOpen: () => void;
    onLine: (line: string) => void;
  },
): Promise<WatchEnd> {
  let req: ClientRequest;
  try {
    req = await open(conn, "GET", path, {}, opts.signal);
  } catch (err) {
    return { kind: "error", error: err instanceof Error ? err : new Error(String(err)) };
  }
  return new Promise<WatchEnd>((resolve) => {
    let settled = false;
    const finish = (end: WatchEnd): void => {
      if (settled) return;
      settled = true;
      clearTimeout(headerTimer);
      req.destroy();
      resolve(end);
    };
    const headerTimer = setTimeout(() => {
      finish({ kind: "error", error: new Error(`no answer within ${opts.headerTimeoutMs} ms`) });
    }, opts.headerTimeoutMs);
    req.on("error", (error) => finish({ kind: "error", error }));
    req.on("response", (res) => {
      clearTimeout(headerTimer);
      if (res.statusCode !== 200) {
        readBody(res).then(
          (body) => finish({ kind: "status", status: res.statusCode ?? 0, body }),
          (error: unknown) => finish({ kind: "error", error: error as Error }),
        );
        return;
      }
      opts.onOpen();
      let pending = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (settled) return;
        const lines = (pending + chunk).split("\n");
        pending = lines.pop() ?? "";
        if (pending.length > MAX_LINE_BYTES) {
          finish({ kind: "error", error: new Error("watch event larger than 16 MiB") });
          return;
        }
        try {
          for (const line of lines) {
            if (req.destroyed) break; // a handler ended the watch
            if (line.trim() !== "") opts.onLine(line);
          }
        } catch (err) {
          // A throw out of a stream's data listener would end the process; end the watch instead.
          finish({ kind: "error", error: new Error(`watch handler failed: ${String(err)}`) });
        }
      });
      res.on("error", (error) => finish({ kind: "error", error }));
      res.on("end", () => finish({ kind: "closed" }));
      res.on("close", () => finish(res.complete ? { kind: "closed" } : cutShort()));
    });
    req.end();
  });
}

function cutShort(): WatchEnd {
  return { kind: "error", error: new Error("watch connection closed mid-stream") };
}
