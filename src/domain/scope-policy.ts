// spec.tokenPolicy and spec.rateLimit of a TokenScope: lifetimes bounded by the installation's
// cap, and the per-token rate.
import { formatDuration, parseDuration } from "./duration.ts";
import { addProblem, checkKnownFields, isRecord, own } from "./scope-fields.ts";
import type { Fields, Report } from "./scope-fields.ts";
import { DEFAULT_MAX_TTL_MS } from "./scope-types.ts";
import type { RateLimit, ScopeValidationOptions, TokenPolicy } from "./scope-types.ts";

const HOUR_MS = 3_600_000;
const DEFAULT_TTL_MS = 168 * HOUR_MS;
const DEFAULT_GRACE_MS = 24 * HOUR_MS;
const POLICY_FIELDS = ["maxTTL", "defaultTTL", "rotationGracePeriod"];

/** A duration field: undefined when absent, "invalid" once the problem is recorded. */
function duration(report: Report, obj: Fields, key: string, allowZero: boolean) {
  const value = own(obj, key);
  if (value === undefined) return undefined;
  const field = `spec.tokenPolicy.${key}`;
  const ms = typeof value === "string" ? parseDuration(value) : undefined;
  if (ms === undefined) {
    addProblem(report, field, 'must be a duration such as "720h" or "1h30m"');
    return "invalid";
  }
  if (ms === 0 && !allowZero) {
    addProblem(report, field, "must be greater than 0");
    return "invalid";
  }
  return ms;
}

export function checkTokenPolicy(
  report: Report,
  value: unknown,
  opts: ScopeValidationOptions,
): TokenPolicy {
  const obj = isRecord(value) ? value : {};
  if (value !== undefined && !isRecord(value)) {
    addProblem(report, "spec.tokenPolicy", "must be an object");
  }
  checkKnownFields(report, obj, "spec.tokenPolicy", POLICY_FIELDS);
  const cap = opts.maxTTLCapMs;
  const maxGiven = duration(report, obj, "maxTTL", false);
  const maxTTLms = typeof maxGiven === "number" ? maxGiven : Math.min(DEFAULT_MAX_TTL_MS, cap);
  if (typeof maxGiven === "number" && maxGiven > cap) {
    const message = `${formatDuration(maxGiven)} is above this installation's cap of ${formatDuration(cap)}`;
    addProblem(report, "spec.tokenPolicy.maxTTL", message);
  }
  // The other two are bounded by maxTTL; when maxTTL itself is invalid, that is the one problem.
  const bounded = (key: string, allowZero: boolean, fallback: number): number => {
    const ms = duration(report, obj, key, allowZero);
    if (typeof ms !== "number") return fallback;
    if (maxGiven !== "invalid" && ms > maxTTLms) {
      const message = `${formatDuration(ms)} is longer than maxTTL (${formatDuration(maxTTLms)})`;
      addProblem(report, `spec.tokenPolicy.${key}`, message);
    }
    return ms;
  };
  return {
    maxTTLms,
    defaultTTLms: bounded("defaultTTL", false, Math.min(DEFAULT_TTL_MS, maxTTLms)),
    rotationGraceMs: bounded("rotationGracePeriod", true, Math.min(DEFAULT_GRACE_MS, maxTTLms)),
  };
}

export function checkRateLimit(report: Report, value: unknown): RateLimit | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) {
    addProblem(report, "spec.rateLimit", "must be an object");
    return undefined;
  }
  checkKnownFields(report, value, "spec.rateLimit", ["requestsPerSecond", "burst"]);
  const rps = own(value, "requestsPerSecond");
  const burst = own(value, "burst");
  const rpsOk = typeof rps === "number" && Number.isFinite(rps) && rps > 0;
  if (!rpsOk) {
    addProblem(report, "spec.rateLimit.requestsPerSecond", "is required: a number greater than 0");
  }
  const burstOk =
    burst === undefined || (typeof burst === "number" && Number.isSafeInteger(burst) && burst >= 1);
  if (!burstOk) addProblem(report, "spec.rateLimit.burst", "must be a whole number, at least 1");
  if (!rpsOk || !burstOk) return undefined;
  // Without a burst, one second's worth of requests may arrive at once.
  return { requestsPerSecond: rps, burst: burst ?? Math.max(1, Math.ceil(rps)) };
}
