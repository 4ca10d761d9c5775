// spec.rules and spec.sources of a TokenScope: what a token may call, and from where.
import { parseCidr, type CidrBlock } from "./cidr.ts";
import { hostPatternProblem, methodProblem, pathPatternProblem } from "./route-match.ts";
import type { RouteRule } from "./route-match.ts";
import { addProblem, checkKnownFields, isRecord, optionalList, own } from "./scope-fields.ts";
import type { ListSpec, Report } from "./scope-fields.ts";

export const ALLOW_BROAD_ANNOTATION = "tokenscope.dev/allow-broad";

/** Upper bounds, also for the CRD schema (CEL cost estimation needs maxItems). */
export const SCOPE_LIMITS = {
  rules: 64,
  hosts: 32,
  paths: 64,
  methods: 16,
  cidrs: 64,
  principals: 64,
};

const MAX_SPIFFE_ID = 2048;
const SPIFFE_RE = /^spiffe:\/\/[a-z0-9._-]+((?:\/[A-Za-z0-9._-]+)+)$/;

const HOSTS: ListSpec = {
  max: SCOPE_LIMITS.hosts,
  ifEmpty: "omit hosts to allow any host",
  problemOf: hostPatternProblem,
};
const PATHS: ListSpec = {
  max: SCOPE_LIMITS.paths,
  ifEmpty: "omit paths to allow any path",
  problemOf: pathPatternProblem,
};
const METHODS: ListSpec = {
  max: SCOPE_LIMITS.methods,
  ifEmpty: 'list the methods, or "*" for any',
  problemOf: methodProblem,
};
const CIDRS: ListSpec = {
  max: SCOPE_LIMITS.cidrs,
  ifEmpty: "omit cidrs to allow any address",
  quote: false, // parseCidr's messages name the block already
  problemOf: (text) => {
    const parsed = parseCidr(text);
    return "error" in parsed ? parsed.error : undefined;
  },
};
const PRINCIPALS: ListSpec = {
  max: SCOPE_LIMITS.principals,
  ifEmpty: "omit principals to allow any caller",
  problemOf: spiffeIdProblem,
};

function checkRule(report: Report, value: unknown, field: string): RouteRule | undefined {
  if (!isRecord(value)) {
    addProblem(report, field, "must be an object with methods");
    return undefined;
  }
  const before = report.problems.length;
  checkKnownFields(report, value, field, ["hosts", "paths", "methods"]);
  const hosts = optionalList(report, value, "hosts", field, HOSTS);
  const paths = optionalList(report, value, "paths", field, PATHS);
  const methods = optionalList(report, value, "methods", field, METHODS);
  if (own(value, "methods") === undefined) {
    addProblem(report, `${field}.methods`, 'is required: list the methods, or "*" for any');
  }
  if (methods?.includes("*")) {
    if (methods.length > 1) addProblem(report, `${field}.methods`, '"*" must be the only method');
    else report.warnings.push(`${field}.methods: "*" allows any method, writes included`);
  }
  if (report.problems.length > before || !methods) return undefined;
  return { hosts, paths, methods };
}

/** "Any path with any method" is the master key that token segmentation exists to prevent. */
function checkBroad(report: Report, rule: RouteRule, field: string, allowBroad: boolean): void {
  const anyPath = !rule.paths || rule.paths.includes("/*");
  if (!anyPath || !rule.methods.includes("*")) return;
  const annotation = `${ALLOW_BROAD_ANNOTATION}: "true"`;
  if (allowBroad) {
    report.warnings.push(`${field} allows any path with any method (${annotation})`);
    return;
  }
  const message = `allows any path with any method (a god-level scope); narrow its paths or methods, or annotate ${annotation}`;
  addProblem(report, field, message);
}

export function checkRules(report: Report, value: unknown, allowBroad: boolean): RouteRule[] {
  const field = "spec.rules";
  const max = SCOPE_LIMITS.rules;
  let problem: string | undefined;
  if (value === undefined) problem = "is required: at least one rule";
  else if (!Array.isArray(value)) problem = "must be a list of rules";
  else if (value.length === 0) problem = "must have at least one rule";
  else if (value.length > max) problem = `must have at most ${max} rules`;
  if (problem !== undefined || !Array.isArray(value)) {
    addProblem(report, field, problem ?? "must be a list of rules");
    return [];
  }
  const rules: RouteRule[] = [];
  value.forEach((item: unknown, i) => {
    const rule = checkRule(report, item, `${field}[${i}]`);
    if (!rule) return;
    checkBroad(report, rule, `${field}[${i}]`, allowBroad);
    rules.push(rule);
  });
  checkBroadTogether(report, rules, field, allowBroad);
  return rules;
}

/** Reading and every kind of write: listing them all is "*" by another name. */
const EVERY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/**
 * The same master key spelled out: any-path rules whose methods, together, include every read
 * and write method (one rule listing them all, or several rules splitting them).
 */
function checkBroadTogether(
  report: Report,
  rules: readonly RouteRule[],
  field: string,
  allowBroad: boolean,
): void {
  const anyPath = rules.filter((r) => !r.paths || r.paths.includes("/*"));
  const methods = new Set(anyPath.flatMap((r) => r.methods));
  if (methods.has("*") || !EVERY_METHOD.every((m) => methods.has(m))) return;
  const annotation = `${ALLOW_BROAD_ANNOTATION}: "true"`;
  if (allowBroad) {
    report.warnings.push(`${field} allow any path with every method (${annotation})`);
    return;
  }
  addProblem(
    report,
    field,
    `allow any path with ${EVERY_METHOD.join(", ")}: every method spelled out is a god-level scope; narrow the paths or methods, or annotate ${annotation}`,
  );
}

export function spiffeIdProblem(id: string): string | undefined {
  if (id.length > MAX_SPIFFE_ID) return `must be at most ${MAX_SPIFFE_ID} characters`;
  if (!id.startsWith("spiffe://")) return 'is not a SPIFFE ID ("spiffe://<trust-domain>/<path>")';
  if (id.includes("?") || id.includes("#")) return "must not contain a query or fragment";
  const match = SPIFFE_RE.exec(id);
  if (!match) {
    return "is not a well-formed SPIFFE ID: a lowercase trust domain, then a path of /-separated segments of letters, digits, '.', '-' and '_'";
  }
  const segments = (match[1] ?? "").split("/");
  if (segments.some((s) => s === "." || s === "..")) return 'must not contain "." or ".." segments';
  return undefined;
}

export interface Sources {
  readonly cidrs?: readonly CidrBlock[];
  readonly principals?: readonly string[];
}

export function checkSources(report: Report, value: unknown): Sources {
  if (value === undefined) return {};
  if (!isRecord(value)) {
    addProblem(report, "spec.sources", "must be an object");
    return {};
  }
  checkKnownFields(report, value, "spec.sources", ["cidrs", "principals"]);
  const cidrs = optionalList(report, value, "cidrs", "spec.sources", CIDRS);
  return {
    // Parsed twice (here and in the check) only at load time, to keep one list-checking path.
    cidrs: cidrs?.map((text) => parseCidr(text) as CidrBlock),
    principals: optionalList(report, value, "principals", "spec.sources", PRINCIPALS),
  };
}
