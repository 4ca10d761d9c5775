// Helpers of the Kubernetes tests: TokenScope manifests, polling, and reading the ops port.
import { setTimeout as sleep } from "node:timers/promises";

export function tokenScope(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
  annotations?: Record<string, string>,
): Record<string, unknown> {
  return {
    apiVersion: "tokenscope.dev/v1alpha1",
    kind: "TokenScope",
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec,
  };
}

export const READ_SPEC = {
  owner: "team-analytics",
  rules: [
    { hosts: ["reports.prod.svc.cluster.local"], paths: ["/v1/reports/*"], methods: ["GET"] },
  ],
};

/** Polls until `check` returns a value other than undefined; returns it and how long it took. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  let last: Error | undefined;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return { value, ms: Date.now() - started };
    } catch (err) {
      last = err instanceof Error ? err : new Error(JSON.stringify(err));
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`,
      );
    }
    await sleep(20);
  }
}

export async function readyz(httpPort: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
  return { status: res.status, body: await res.text() };
}

/** Sum of a counter's samples whose labels include `labels` (e.g. {reason: "error"}). */
export async function counter(
  httpPort: number,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (matches) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}
