// Per-token rate limits (spec.rateLimit) as GCRA, the generic cell rate algorithm: one number per
// token, the theoretical arrival time (TAT) of the next request at the steady rate. A request is
// allowed when it arrives no earlier than TAT minus the burst tolerance. The Redis store runs the
// same arithmetic in Lua (store/rate-limit-script.ts); the embedded store calls gcraStep directly.
import type { Decision, TokenIdentity } from "./decide.ts";
import type { RateLimit, ScopeMode } from "./scope-types.ts";

export interface GcraParams {
  /** Milliseconds between requests at the steady rate (the emission interval). */
  readonly intervalMs: number;
  /** How far ahead of the steady rate a token may run: `burst` intervals. */
  readonly toleranceMs: number;
}

export function gcraParams(limit: RateLimit): GcraParams {
  const intervalMs = 1000 / limit.requestsPerSecond;
  return { intervalMs, toleranceMs: intervalMs * limit.burst };
}

export interface RateOutcome {
  readonly allowed: boolean;
  /** When denied: how long until one request would be allowed (ms, > 0). 0 when allowed. */
  readonly retryAfterMs: number;
}

export interface GcraStep extends RateOutcome {
  /** The TAT to store: advanced by one interval when allowed, unchanged when denied. */
  readonly tat: number | undefined;
}

/** One request at `now` against the stored TAT (undefined: no request for a long time). */
export function gcraStep(tat: number | undefined, now: number, params: GcraParams): GcraStep {
  const base = tat === undefined || tat < now ? now : tat;
  const next = base + params.intervalMs;
  const allowAt = next - params.toleranceMs;
  if (now < allowAt) return { allowed: false, retryAfterMs: allowAt - now, tat };
  return { allowed: true, retryAfterMs: 0, tat: next };
}

/** The key a limit is counted under: per token and per scope (a token has one scope). */
export function rateKey(token: TokenIdentity): string {
  return `${token.scope}:${token.id}`;
}

/** Whole seconds for a retry-after header: never 0, so a client does not retry at once. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The rate check as the last of the scope's own checks (SPEC §4): an allowed decision becomes
 * rate_limited, or, in a DryRun scope, an allow that reports it.
 */
export function applyRateOutcome(
  decision: Decision,
  mode: ScopeMode,
  outcome: RateOutcome,
): Decision {
  if (!decision.allowed || decision.dryRunDeny || outcome.allowed) return decision;
  if (mode === "DryRun") return { ...decision, dryRunDeny: "rate_limited" };
  return {
    allowed: false,
    reason: "rate_limited",
    token: decision.token,
    scopeNamespace: decision.scopeNamespace,
    retryAfterMs: outcome.retryAfterMs,
  };
}
