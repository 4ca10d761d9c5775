// Closed-loop load on loopback for the fault tests: a few concurrent callers send Checks for a
// mix of request kinds until stopped, and every answer is kept with its kind, time and latency.
import { buildCheckRequest, type CheckRequestParams } from "../../src/envoy/check-request.ts";
import type { CheckClient, CheckResponse } from "./check-client.ts";
import { headerMap } from "./check-client.ts";

export interface Sample {
  readonly kind: string;
  /** When the call was sent, ms since the load started. */
  readonly at: number;
  readonly ms: number;
  readonly allowed: boolean;
  /** The deny reason, "ok", or "error:<grpc code>" when the call itself failed. */
  readonly reason: string;
}

export interface Load {
  /** Stops sending and resolves once every in-flight call has been answered. */
  stop(): Promise<Sample[]>;
  /** Samples so far. */
  readonly samples: readonly Sample[];
  /** ms since the load started. */
  elapsed(): number;
}

export function startLoad(opts: {
  client: CheckClient;
  kinds: Readonly<Record<string, () => object>>;
  concurrency: number;
  /** Per-call deadline: far above any answer the server should give. */
  timeoutMs?: number;
  /** Hard cap on calls, so a load never runs away. */
  maxCalls?: number;
}): Load {
  const names = Object.keys(opts.kinds);
  const samples: Sample[] = [];
  const t0 = performance.now();
  let running = true;
  let calls = 0;
  const maxCalls = opts.maxCalls ?? 200_000;
  const worker = async (w: number) => {
    for (let i = w; running && calls < maxCalls; i += opts.concurrency) {
      calls++;
      const kind = names[i % names.length] ?? "";
      const request = opts.kinds[kind]?.() ?? {};
      const start = performance.now();
      let res: CheckResponse | undefined;
      let error: string | undefined;
      try {
        res = await opts.client.check(request, opts.timeoutMs ?? 5000);
      } catch (err) {
        error = `error:${String((err as { code?: unknown }).code ?? err)}`;
      }
      const end = performance.now();
      const allowed = res?.status?.code === 0;
      const reason =
        error ??
        (allowed ? "ok" : (headerMap(res?.denied_response?.headers)["x-tokenscope-reason"] ?? "?"));
      samples.push({ kind, at: start - t0, ms: end - start, allowed, reason });
    }
  };
  const workers = Array.from({ length: opts.concurrency }, (_, w) => worker(w));
  return {
    samples,
    elapsed: () => performance.now() - t0,
    async stop() {
      running = false;
      await Promise.all(workers);
      return samples;
    },
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export function summarize(samples: readonly Sample[]): string {
  const ms = samples.map((s) => s.ms);
  return `n=${samples.length} p50=${percentile(ms, 50).toFixed(1)}ms p99=${percentile(ms, 99).toFixed(1)}ms max=${Math.max(0, ...ms).toFixed(1)}ms`;
}

const READ_ROUTE: CheckRequestParams = {
  method: "GET",
  path: "/v1/reports/2026",
  host: "reports.prod.svc.cluster.local",
  namespace: "prod",
};

/** Request kinds that must never be allowed, whatever happens to the store. */
export const NEVER_ALLOWED = ["revoked", "post", "staging_ns", "unknown", "wrong_secret"];

/**
 * The fault tests' traffic, for a prod/reports-read token and a revoked one: one allowed kind
 * and the kinds of NEVER_ALLOWED (out of scope, unknown, forged secret, revoked).
 */
export function mixedKinds(valid: string, revoked: string): Record<string, () => object> {
  const req = (p: Partial<CheckRequestParams>) => () => buildCheckRequest({ ...READ_ROUTE, ...p });
  return {
    valid: req({ token: valid }),
    revoked: req({ token: revoked }),
    post: req({ token: valid, method: "POST" }),
    staging_ns: req({ token: valid, namespace: "staging" }),
    unknown: req({ token: valid.slice(0, 8) + "Z".repeat(44) }),
    // The real id with another secret: only the stored hash can tell them apart.
    wrong_secret: req({ token: valid.replace(/_(.{12}).{32}/, "_$1" + "Q".repeat(32)) }),
  };
}

export function wrongfulAllows(samples: readonly Sample[]): Sample[] {
  return samples.filter((s) => s.allowed && NEVER_ALLOWED.includes(s.kind));
}
