// An HTTP/1.1 client that sends exactly the bytes a test says (duplicate headers, raw "..",
// encoded slashes, oversize headers): fetch and node:http both tidy requests up first.
import { connect } from "node:net";

export interface RawResponse {
  readonly status: number;
  /** Lowercase name → every value, in order. */
  readonly headers: Readonly<Record<string, string[]>>;
  readonly body: string;
}

export interface RawRequest {
  readonly method?: string;
  readonly path: string;
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: string;
}

function parse(raw: string): RawResponse {
  const split = raw.indexOf("\r\n\r\n");
  if (split < 0) throw new Error(`incomplete HTTP response: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine = "", ...lines] = raw.slice(0, split).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    (headers[name] ??= []).push(line.slice(colon + 1).trim());
  }
  const body = raw.slice(split + 4);
  const chunked = headers["transfer-encoding"]?.some((v) => /chunked/i.test(v)) ?? false;
  return { status, headers, body: chunked ? dechunk(body) : body };
}

function dechunk(text: string): string {
  let out = "";
  let at = 0;
  for (;;) {
    const end = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, end), 16);
    if (end < 0 || !(size > 0)) return out;
    out += text.slice(end + 2, end + 2 + size);
    at = end + 2 + size + 2;
  }
}

export function rawRequest(port: number, req: RawRequest, timeoutMs = 5000): Promise<RawResponse> {
  const head = [
    `${req.method ?? "GET"} ${req.path} HTTP/1.1`,
    ...(req.headers ?? []).map(([k, v]) => `${k}: ${v}`),
    "connection: close",
    ...(req.body === undefined ? [] : [`content-length: ${Buffer.byteLength(req.body)}`]),
  ].join("\r\n");
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(`${head}\r\n\r\n${req.body ?? ""}`);
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no response in ${timeoutMs} ms`)));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      try {
        resolve(parse(Buffer.concat(chunks).toString("latin1")));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
