// The HTTP authorization server (--http-authz-addr): Envoy's HTTP ext_authz service, nginx
// auth_request and Traefik forwardAuth, each on its own path, all answered by the same check.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { CheckService } from "../check/check-service.ts";
import { parseAuthzTarget } from "./dialect.ts";
import { fromHttpRequest } from "./from-http-request.ts";
import type { TrustedProxies } from "./source-address.ts";
import { toHttpResponse, unknownEndpoint, type HttpAnswer } from "./to-http-response.ts";

/** Envoy's default request header limit is 60 KiB; a larger header block is refused (431). */
const MAX_HEADER_BYTES = 64 * 1024;
/** The authorization request's body is never read; a proxy may still forward some of it. */
const MAX_BODY_BYTES = 64 * 1024;

export interface HttpAuthzServer {
  readonly port: number;
  close(graceMs: number): Promise<void>;
}

function send(res: ServerResponse, answer: HttpAnswer): void {
  res.writeHead(answer.status, {
    ...answer.headers,
    "content-length": String(Buffer.byteLength(answer.body)),
  });
  res.end(answer.body);
}

/** Counts and drops the body; a proxy that streams more than the limit loses the connection. */
function discardBody(req: IncomingMessage): void {
  let received = 0;
  req.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received > MAX_BODY_BYTES) req.socket.destroy();
  });
}

export async function startHttpAuthzServer(opts: {
  host: string;
  port: number;
  check: CheckService;
  trustedProxies: TrustedProxies;
  onInternalError: (err: unknown) => void;
}): Promise<HttpAuthzServer> {
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    discardBody(req);
    const target = parseAuthzTarget(req.url ?? "");
    if (!target) {
      send(res, unknownEndpoint());
      return;
    }
    const view = fromHttpRequest(
      target,
      {
        method: req.method ?? "",
        headers: req.headersDistinct,
        peerAddress: req.socket.remoteAddress,
      },
      opts.trustedProxies,
    );
    let answer: HttpAnswer;
    try {
      answer = toHttpResponse((await opts.check(view)).decision, target.dialect);
    } catch (err) {
      // The check service never rejects; should it, the answer is still a deny.
      opts.onInternalError(err);
      answer = toHttpResponse({ allowed: false, reason: "store_unavailable" }, target.dialect);
    }
    if (res.destroyed) return;
    try {
      send(res, answer);
    } catch (err) {
      // A header value Node refuses to write: answer a deny rather than nothing.
      opts.onInternalError(err);
      if (!res.headersSent) {
        send(res, toHttpResponse({ allowed: false, reason: "store_unavailable" }, target.dialect));
      }
    }
  }

  const server: Server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.onInternalError(err);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      reject(
        new Error(
          `cannot listen for HTTP authorization on ${opts.host}:${opts.port}: ${err.message}`,
        ),
      );
    });
    server.listen(opts.port, opts.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: (graceMs) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
        }, graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
