// The admission webhook's HTTPS server: POST /validate with an AdmissionReview v1. The certificate
// is re-read when its files change (cert-manager renews it in the mounted Secret by swapping a
// symlink) and swapped in with setSecureContext: new handshakes get the new certificate, the
// listener and open connections stay.
import { readFileSync, watch, type FSWatcher } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import type { Logger } from "../observability/logger.ts";
import { reviewAdmission, type AdmissionOptions } from "./admission.ts";
import { DEFAULT_INJECTION, reviewPodInjection, type InjectionConfig } from "./sidecar-injector.ts";

/** An AdmissionReview carries the object and the old object; each is at most ~1.5 MB in etcd. */
export const MAX_REVIEW_BYTES = 6 * 1024 * 1024;
const TLS_MIN_VERSION = "TLSv1.2";

export interface WebhookServerOptions extends AdmissionOptions {
  readonly host: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly logger: Logger;
  /** Safety net for volumes where file events do not arrive (default 30 s). */
  readonly reloadPollMs?: number;
  readonly maxBodyBytes?: number;
  /** The sidecar the mutating webhook (/mutate) injects into Pods. */
  readonly injection?: InjectionConfig;
}

export interface WebhookServer {
  readonly port: number;
  /** Re-read the certificate files now; false when they are unreadable or do not match. */
  reloadCertificate(): boolean;
  close(): Promise<void>;
}

interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export class WebhookCertificateError extends Error {
  override readonly name = "WebhookCertificateError";
}

/** Both files, checked to form a usable pair (a half-renewed Secret may not, for a moment). */
function readKeyPair(certFile: string, keyFile: string): KeyPair {
  let pair: KeyPair;
  try {
    pair = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  } catch (err) {
    throw new WebhookCertificateError(
      `cannot read the webhook certificate: ${(err as Error).message}`,
    );
  }
  try {
    createSecureContext({ ...pair, minVersion: TLS_MIN_VERSION });
  } catch (err) {
    throw new WebhookCertificateError(
      `the webhook certificate and key do not form a usable pair: ${(err as Error).message}`,
    );
  }
  return pair;
}

function describeCert(cert: Buffer): Record<string, string> {
  try {
    const x509 = new X509Certificate(cert);
    return { subject: x509.subject, not_after: x509.validTo, sha256: x509.fingerprint256 };
  } catch {
    return {};
  }
}

function reply(res: ServerResponse, status: number, body: string, headers = {}): void {
  res
    .writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers })
    .end(`${body}\n`);
}

/** The body, or undefined once an error has been answered (too large, aborted). */
function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    const tooLarge = () => {
      reply(res, 413, `request body over ${limit} bytes`, { connection: "close" });
      req.destroy();
      resolve(undefined);
    };
    if (declared > limit) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge();
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(size > limit ? undefined : Buffer.concat(chunks)));
    req.on("error", () => resolve(undefined));
  });
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const { logger } = opts;
  const limit = opts.maxBodyBytes ?? MAX_REVIEW_BYTES;
  let current = readKeyPair(opts.certFile, opts.keyFile);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== "/validate" && path !== "/mutate") {
      reply(res, 404, "not found; the webhooks are /validate (TokenScope) and /mutate (Pod)");
      return;
    }
    if (req.method !== "POST") {
      reply(res, 405, "only POST", { allow: "POST" });
      return;
    }
    const type = req.headers["content-type"] ?? "";
    if (!/^application\/json\b/i.test(type)) {
      reply(res, 415, "the body must be application/json (an AdmissionReview)");
      return;
    }
    const raw = await readBody(req, res, limit);
    if (raw === undefined) return;
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (err) {
      if (path === "/mutate")
        body = undefined; // answered below: admitted, with a warning
      else {
        reply(res, 400, `malformed AdmissionReview: not JSON (${(err as Error).message})`);
        return;
      }
    }
    if (path === "/mutate") {
      mutate(body, res);
      return;
    }
    const outcome = reviewAdmission(body, opts);
    if (!outcome.ok) {
      logger.log("warn", "malformed AdmissionReview", { error: outcome.error });
      reply(res, 400, `malformed AdmissionReview: ${outcome.error}`);
      return;
    }
    logger.log(outcome.summary.allowed ? "info" : "warn", "admission review", {
      ...outcome.summary,
    });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(outcome.review));
  };

  /** Sidecar injection never fails a pod creation: every answer is an allowed review. */
  const mutate = (body: unknown, res: ServerResponse) => {
    const { response, injected } = reviewPodInjection(body, opts.injection ?? DEFAULT_INJECTION);
    const request =
      typeof body === "object" && body !== null && "request" in body ? body.request : {};
    const named = (request ?? {}) as { namespace?: unknown; name?: unknown };
    logger.log(response.warnings ? "warn" : "info", "pod injection review", {
      uid: response.uid,
      namespace: named.namespace,
      injected,
      warnings: response.warnings,
    });
    const review = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(review));
  };

  const server: Server = createServer({ ...current, minVersion: TLS_MIN_VERSION }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.log("error", "admission webhook failed", { err: String(err) });
      if (!res.headersSent) reply(res, 500, "internal error");
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.on("tlsClientError", (err) =>
    logger.log("debug", "webhook TLS handshake failed", { err: String(err) }),
  );

  const reloadCertificate = (): boolean => {
    let next: KeyPair;
    try {
      next = readKeyPair(opts.certFile, opts.keyFile);
    } catch (err) {
      logger.log("warn", "webhook certificate not reloaded; keeping the current one", {
        err: String(err),
      });
      return false;
    }
    if (next.cert.equals(current.cert) && next.key.equals(current.key)) return true;
    server.setSecureContext({ ...next, minVersion: TLS_MIN_VERSION });
    current = next;
    logger.log("info", "webhook certificate reloaded", describeCert(next.cert));
    return true;
  };

  // Kubernetes updates a Secret volume by replacing a "..data" symlink, so the events arrive on
  // the folder, not on the file names we hold: watch the folders and re-read after a short lull.
  let debounce: NodeJS.Timeout | undefined;
  const schedule = () => {
    clearTimeout(debounce);
    debounce = setTimeout(reloadCertificate, 100);
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(opts.certFile), dirname(opts.keyFile)])) {
    try {
      const watcher = watch(dir, { persistent: false }, schedule);
      watcher.on("error", (err) =>
        logger.log("warn", "webhook certificate watch failed", { dir, err: String(err) }),
      );
      watchers.push(watcher);
    } catch (err) {
      logger.log("warn", "cannot watch the webhook certificate folder; polling only", {
        dir,
        err: String(err),
      });
    }
  }
  const poll = setInterval(reloadCertificate, opts.reloadPollMs ?? 30_000);
  poll.unref();

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      reject(
        new Error(`cannot listen for the webhook on ${opts.host}:${opts.port}: ${err.message}`),
      );
    });
    server.listen(opts.port, opts.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  logger.log("info", "admission webhook serving", {
    port,
    path: "/validate",
    ...describeCert(current.cert),
  });
  return {
    port,
    reloadCertificate,
    close: () =>
      new Promise((resolve) => {
        clearTimeout(debounce);
        clearInterval(poll);
        for (const w of watchers) w.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
