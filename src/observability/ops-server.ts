// Ops HTTP: liveness, readiness, Prometheus metrics. Plain node:http, nothing else on this port.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface Readiness {
  ready(): boolean;
  /** Why not ready, in words, for /readyz bodies. */
  reasons(): string[];
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startOpsServer(opts: {
  host: string;
  port: number;
  /** A Registry, or a view over a cluster's workers (cluster-metrics.ts). */
  registry: Pick<Registry, "metrics" | "contentType">;
  readiness: Readiness;
}): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ready = opts.readiness.ready();
      const body = ready ? "ready\n" : `not ready: ${opts.readiness.reasons().join("; ")}\n`;
      res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(body);
    } else if (path === "/metrics") {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": opts.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      reject(new Error(`cannot listen for HTTP on ${opts.host}:${opts.port}: ${err.message}`));
    });
    server.listen(opts.port, opts.host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
