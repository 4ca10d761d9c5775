// Generic field checks for TokenScope manifests, shared by the section checks. Each records one
// FieldProblem per problem, with the exact field path, and never throws.
import type { FieldProblem } from "./scope-types.ts";

export interface Report {
  readonly problems: FieldProblem[];
  readonly warnings: string[];
}

export type Fields = Readonly<Record<string, unknown>>;

const MAX_UNKNOWN_REPORTED = 10;

export function isRecord(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Own properties only, so "constructor" or "__proto__" never read through to a prototype. Null
 * reads as absent, as Kubernetes prunes nulls of non-nullable fields before validating.
 */
export function own(obj: Fields, key: string): unknown {
  return Object.hasOwn(obj, key) ? (obj[key] ?? undefined) : undefined;
}

export function addProblem(report: Report, field: string, message: string): void {
  report.problems.push({ field, message });
}

/** The typos worth a hint: case ("maxTtl") and plural ("method" for "methods"). */
function looselyEqual(a: string, b: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/s$/, "");
  return norm(a) === norm(b);
}

/** Typo protection: like a structural schema without x-kubernetes-preserve-unknown-fields. */
export function checkKnownFields(report: Report, obj: Fields, field: string, known: string[]) {
  const unknown = Object.keys(obj).filter((key) => !known.includes(key));
  for (const key of unknown.slice(0, MAX_UNKNOWN_REPORTED)) {
    const hint = known.find((k) => looselyEqual(k, key));
    const message = hint ? `unknown field; did you mean "${hint}"?` : "unknown field";
    addProblem(report, `${field}.${key}`, message);
  }
  if (unknown.length > MAX_UNKNOWN_REPORTED) {
    addProblem(report, field, `${unknown.length - MAX_UNKNOWN_REPORTED} more unknown fields`);
  }
}

export interface ListSpec {
  readonly max: number;
  /** Said when the list is empty: what omitting it would mean instead. */
  readonly ifEmpty: string;
  readonly problemOf: (item: string) => string | undefined;
  /** Prefix each item's problem with the item itself (default true). */
  readonly quote?: boolean;
}

/**
 * obj[key] as a non-empty list of strings, each passing `problemOf`. Undefined when absent or
 * when anything is wrong (then with problems recorded); an empty list is a problem, never "any".
 */
export function optionalList(
  report: Report,
  obj: Fields,
  key: string,
  parent: string,
  spec: ListSpec,
): string[] | undefined {
  const value = own(obj, key);
  const field = `${parent}.${key}`;
  if (value === undefined) return undefined;
  let problem: string | undefined;
  if (!Array.isArray(value)) problem = "must be a list of strings";
  else if (value.length === 0) problem = `must not be empty; ${spec.ifEmpty}`;
  else if (value.length > spec.max) problem = `must have at most ${spec.max} entries`;
  if (problem !== undefined || !Array.isArray(value)) {
    addProblem(report, field, problem ?? "must be a list of strings");
    return undefined;
  }
  const before = report.problems.length;
  const items: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    const message = typeof item === "string" ? spec.problemOf(item) : "must be a string";
    if (message === undefined) items.push(item as string);
    else if (typeof item !== "string" || spec.quote === false) {
      addProblem(report, `${field}[${i}]`, message);
    } else addProblem(report, `${field}[${i}]`, `${JSON.stringify(item)}: ${message}`);
  }
  return report.problems.length === before ? items : undefined;
}
