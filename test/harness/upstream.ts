// The API behind a proxy in the tests: answers 200 and records the headers each request carried.
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** Every value of every header, lowercase names (duplicates kept). */
  readonly distinct: Readonly<Partial<Record<string, string[]>>>;
}

export interface Upstream {
  readonly port: number;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    seen.push({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      distinct: req.headersDistinct,
    });
    res.writeHead(200, { "content-type": "text/plain" }).end("upstream ok\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
