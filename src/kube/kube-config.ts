// The one place that imports @kubernetes/client-node: it finds the cluster and its credentials
// (kubeconfig, or the pod's service account), and nothing more. Requests go through our own
// transport (kube-http.ts), so every list, watch and patch has a deadline and can be aborted.
import type { RequestOptions } from "node:https";
import { delimiter } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export interface KubeConnection {
  /** The API server's base URL, e.g. https://10.0.0.1:443 */
  readonly server: string;
  /** Where the connection came from, for the start-up log: a file, "in-cluster" or "default". */
  readonly source: string;
  /**
   * TLS material, headers (Authorization) and agent for one request. Called per request, so a
   * rotated service-account token or an exec plugin's refreshed credential is picked up.
   */
  requestOptions(): Promise<RequestOptions>;
}

/**
 * As kubectl: the given kubeconfig path(s) (colon-separated like KUBECONFIG, the first file's
 * current context wins), else ~/.kube/config, else the in-cluster service account.
 */
export function openKubeConnection(kubeconfig: string | undefined): KubeConnection {
  const kc = new KubeConfig();
  const files = (kubeconfig ?? "").split(delimiter).filter((f) => f !== "");
  const [first, ...rest] = files;
  if (first === undefined) {
    kc.loadFromDefault();
  } else {
    kc.loadFromFile(first);
    for (const file of rest) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kc.mergeConfig(more, true); // as kubectl: the first file to set current-context wins
    }
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const url = new URL(cluster.server); // throws on a malformed server address
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`cluster server ${cluster.server} is not an http(s) URL`);
  }
  if (url.protocol === "http:" && !cluster.skipTLSVerify) {
    // Also what loadFromDefault falls back to when it finds nothing: http://localhost:8080.
    throw new Error(
      first === undefined
        ? "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and no in-cluster service account"
        : `cluster server ${cluster.server} is plain http; client-node refuses it unless insecure-skip-tls-verify is set`,
    );
  }
  return {
    server: cluster.server.replace(/\/+$/, ""),
    source: first !== undefined ? files.join(delimiter) : "default loading rules",
    async requestOptions() {
      const opts: RequestOptions = {};
      await kc.applyToHTTPSOptions(opts);
      return opts;
    },
  };
}
