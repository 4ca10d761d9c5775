// What a TokenScope's status should say, and the merge patch that says it — or nothing, when the
// object already says it. Pure: several replicas compute the same answer from the same object,
// so only the first of them writes, and a restart writes nothing at all.
import type { FieldProblem } from "../domain/scope-types.ts";
import type { ScopeObject } from "./watch-events.ts";

export interface ReadyVerdict {
  readonly status: "True" | "False";
  /** CamelCase, machine-readable (kubectl shows it; alerts match on it). */
  readonly reason: string;
  /** For people: every problem, with the field it is in. */
  readonly message: string;
}

/** The first matching prefix names the reason when all problems are under it. */
const REASONS: readonly (readonly [prefix: string, reason: string])[] = [
  ["spec.rules", "InvalidRule"],
  ["spec.sources", "InvalidSource"],
  ["spec.tokenPolicy", "InvalidTokenPolicy"],
  ["spec.rateLimit", "InvalidRateLimit"],
  ["spec", "InvalidSpec"],
  ["metadata", "InvalidMetadata"],
];

const MAX_LISTED = 20;
const MAX_MESSAGE = 4096;

function under(field: string, prefix: string): boolean {
  return field === prefix || field.startsWith(`${prefix}.`) || field.startsWith(`${prefix}[`);
}

export function reasonFor(problems: readonly FieldProblem[]): string {
  for (const [prefix, reason] of REASONS) {
    if (problems.length > 0 && problems.every((p) => under(p.field, prefix))) return reason;
  }
  // Problems in several parts of the spec: the spec as a whole is invalid.
  return problems.every((p) => under(p.field, "spec")) ? "InvalidSpec" : "Invalid";
}

function listed(lines: readonly string[]): string {
  const shown = lines.slice(0, MAX_LISTED);
  const more = lines.length - shown.length;
  const text = shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
}

export function readyVerdict(
  problems: readonly FieldProblem[],
  warnings: readonly string[],
): ReadyVerdict {
  if (problems.length > 0) {
    return {
      status: "False",
      reason: reasonFor(problems),
      message: listed(problems.map((p) => `${p.field}: ${p.message}`)),
    };
  }
  const message = warnings.length > 0 ? `accepted with warnings: ${listed(warnings)}` : "";
  return { status: "True", reason: "Accepted", message };
}

type Fields = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface StatusPatch {
  readonly metadata: { readonly resourceVersion: string };
  readonly status: {
    readonly observedGeneration: number;
    readonly conditions: readonly Fields[];
  };
}

/** metav1.Time: RFC 3339 in UTC, whole seconds. */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * The merge patch for /status, or undefined when status.observedGeneration and the Ready
 * condition already say this. Other condition types are kept; lastTransitionTime moves only
 * when Ready flips. metadata.resourceVersion makes the write conditional (409 if stale).
 */
export function statusPatch(
  obj: ScopeObject,
  verdict: ReadyVerdict,
  nowMs: number,
): StatusPatch | undefined {
  const status = isRecord(obj.raw.status) ? obj.raw.status : {};
  const conditions = Array.isArray(status.conditions) ? (status.conditions as unknown[]) : [];
  const current = conditions.find((c) => isRecord(c) && c.type === "Ready") as Fields | undefined;
  const unchanged =
    current !== undefined &&
    current.status === verdict.status &&
    current.reason === verdict.reason &&
    current.message === verdict.message &&
    current.observedGeneration === obj.generation &&
    typeof current.lastTransitionTime === "string" &&
    status.observedGeneration === obj.generation;
  if (unchanged) return undefined;
  const kept =
    current?.status === verdict.status && typeof current.lastTransitionTime === "string"
      ? current.lastTransitionTime
      : kubeTime(nowMs);
  const ready = {
    type: "Ready",
    status: verdict.status,
    reason: verdict.reason,
    message: verdict.message,
    observedGeneration: obj.generation,
    lastTransitionTime: kept,
  };
  const others = conditions.filter((c): c is Fields => isRecord(c) && c.type !== "Ready");
  return {
    metadata: { resourceVersion: obj.resourceVersion },
    status: { observedGeneration: obj.generation, conditions: [...others, ready] },
  };
}
