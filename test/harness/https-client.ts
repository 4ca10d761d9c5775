// One HTTPS request per call, on a fresh connection (so each one is a new TLS handshake), trusting
// only the given CA: what the Kubernetes API server does when it calls a webhook.
import { request } from "node:https";
import { TLSSocket } from "node:tls";

export interface HttpsReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  readonly peerFingerprint256: string;
}

export function httpsRequest(opts: {
  port: number;
  ca: Buffer;
  path?: string;
  method?: string;
  contentType?: string;
  body?: string | Buffer;
}): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: opts.port,
        path: opts.path ?? "/validate",
        method: opts.method ?? "POST",
        ca: opts.ca,
        agent: false,
        headers: {
          "content-type": opts.contentType ?? "application/json",
          ...(opts.body === undefined ? {} : { "content-length": Buffer.byteLength(opts.body) }),
        },
      },
      (res) => {
        const socket = res.socket;
        const fingerprint =
          socket instanceof TLSSocket ? socket.getPeerCertificate().fingerprint256 : "";
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            peerFingerprint256: fingerprint,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}
