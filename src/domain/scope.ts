// TokenScope manifest → problems, or a compiled scope. The one validation that both the admission
// webhook and the --scopes file loader call, so what admission accepts is what the server enforces.
import { compileCidrMatcher } from "./cidr.ts";
import { formatDuration } from "./duration.ts";
import { compileRouteMatcher, type RouteRule } from "./route-match.ts";
import { addProblem, checkKnownFields, isRecord, own } from "./scope-fields.ts";
import type { Fields, Report } from "./scope-fields.ts";
import { checkRateLimit, checkTokenPolicy } from "./scope-policy.ts";
import { ALLOW_BROAD_ANNOTATION, checkRules, checkSources, type Sources } from "./scope-spec.ts";
import type { CompiledScope, FieldProblem, RateLimit, ScopeEntry } from "./scope-types.ts";
import type { ScopeMode, ScopeValidationOptions, TokenPolicy } from "./scope-types.ts";

export { ALLOW_BROAD_ANNOTATION, SCOPE_LIMITS } from "./scope-spec.ts";
export const SCOPE_API_VERSION = "tokenscope.dev/v1alpha1";
export const SCOPE_KIND = "TokenScope";

const SPEC_FIELDS = [
  "owner",
  "description",
  "mode",
  "rules",
  "sources",
  "tokenPolicy",
  "rateLimit",
];
const DNS_LABEL = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?";
const DNS_LABEL_RE = new RegExp(`^${DNS_LABEL}$`);
const DNS_SUBDOMAIN_RE = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);
const CONTROL_RE = /\p{Cc}/u;

interface Metadata {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly allowBroad: boolean;
}

interface ValidScope extends Metadata {
  readonly owner: string;
  readonly description: string;
  readonly mode: ScopeMode;
  readonly rules: readonly RouteRule[];
  readonly sources: Sources;
  readonly tokenPolicy: TokenPolicy;
  readonly rateLimit?: RateLimit;
}

const NAME_RULE =
  "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)";
const NAMESPACE_RULE =
  "a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)";

/** metadata.name or .namespace: the string as given (for the index key) even when invalid. */
function nameField(report: Report, meta: Fields, key: string, valid: (s: string) => boolean) {
  const value = own(meta, key);
  const field = `metadata.${key}`;
  if (value === undefined || value === "") addProblem(report, field, "is required");
  else if (typeof value !== "string" || !valid(value)) {
    addProblem(report, field, `must be ${key === "name" ? NAME_RULE : NAMESPACE_RULE}`);
  }
  return typeof value === "string" ? value : "";
}

function checkMetadata(report: Report, value: unknown): Metadata {
  if (!isRecord(value)) {
    addProblem(report, "metadata", "is required, with name and namespace");
    return { name: "", namespace: "", generation: 0, allowBroad: false };
  }
  const generation = own(value, "generation");
  const annotations = own(value, "annotations");
  return {
    name: nameField(report, value, "name", (s) => s.length <= 253 && DNS_SUBDOMAIN_RE.test(s)),
    namespace: nameField(report, value, "namespace", (s) => s.length <= 63 && DNS_LABEL_RE.test(s)),
    generation:
      typeof generation === "number" && Number.isSafeInteger(generation) && generation > 0
        ? generation
        : 0,
    allowBroad: isRecord(annotations) && own(annotations, ALLOW_BROAD_ANNOTATION) === "true",
  };
}

function checkOwner(report: Report, value: unknown): string {
  const field = "spec.owner";
  if (typeof value !== "string" || value.trim() === "") {
    addProblem(
      report,
      field,
      "is required: the team or person accountable for this scope's tokens",
    );
    return "";
  }
  // The owner travels upstream in the x-tokenscope-owner header and is a metric label.
  if (value.length > 253) addProblem(report, field, "must be at most 253 characters");
  else if (CONTROL_RE.test(value)) addProblem(report, field, "must not contain control characters");
  else if (value !== value.trim()) addProblem(report, field, "must not start or end with spaces");
  return value;
}

function checkSpec(
  report: Report,
  value: unknown,
  opts: ScopeValidationOptions,
  meta: Metadata,
): ValidScope | undefined {
  if (!isRecord(value)) {
    addProblem(report, "spec", "is required, with owner and rules");
    return undefined;
  }
  const spec = value;
  checkKnownFields(report, spec, "spec", SPEC_FIELDS);
  const description = own(spec, "description") ?? "";
  if (typeof description !== "string") addProblem(report, "spec.description", "must be a string");
  const mode = own(spec, "mode") ?? "Enforce";
  if (mode !== "Enforce" && mode !== "DryRun") {
    addProblem(report, "spec.mode", 'must be "Enforce" or "DryRun"');
  }
  return {
    ...meta,
    owner: checkOwner(report, own(spec, "owner")),
    description: typeof description === "string" ? description : "",
    mode: mode === "DryRun" ? "DryRun" : "Enforce",
    rules: checkRules(report, own(spec, "rules"), meta.allowBroad),
    sources: checkSources(report, own(spec, "sources")),
    tokenPolicy: checkTokenPolicy(report, own(spec, "tokenPolicy"), opts),
    rateLimit: checkRateLimit(report, own(spec, "rateLimit")),
  };
}

interface Analysis {
  readonly report: Report;
  readonly meta: { readonly namespace: string; readonly name: string };
  /** Set only when there are no problems. */
  readonly scope?: ValidScope;
}

function analyze(obj: unknown, opts: ScopeValidationOptions): Analysis {
  const report: Report = { problems: [], warnings: [] };
  try {
    if (!isRecord(obj)) {
      addProblem(report, "<root>", "must be a TokenScope object (a mapping)");
      return { report, meta: { namespace: "", name: "" } };
    }
    const top = obj;
    if (own(top, "apiVersion") !== SCOPE_API_VERSION) {
      addProblem(report, "apiVersion", `must be "${SCOPE_API_VERSION}"`);
    }
    if (own(top, "kind") !== SCOPE_KIND) addProblem(report, "kind", `must be "${SCOPE_KIND}"`);
    const meta = checkMetadata(report, own(top, "metadata"));
    const scope = checkSpec(report, own(top, "spec"), opts, meta);
    return { report, meta, scope: report.problems.length === 0 ? scope : undefined };
  } catch (err) {
    // Never throw, whatever the input (a throwing getter, a revoked Proxy): fail closed instead.
    addProblem(report, "<root>", `could not be validated: ${String(err)}`);
    return { report, meta: { namespace: "", name: "" } };
  }
}

export function validateTokenScope(
  obj: unknown,
  opts: ScopeValidationOptions,
): { problems: FieldProblem[]; warnings: string[] } {
  const { problems, warnings } = analyze(obj, opts).report;
  return { problems, warnings };
}

/** A ready entry, or a not-ready one carrying its problems (keyed by whatever name it has). */
export function compileTokenScope(obj: unknown, opts: ScopeValidationOptions): ScopeEntry {
  const { report, meta, scope } = analyze(obj, opts);
  const key = `${meta.namespace}/${meta.name}`;
  if (!scope) return { ready: false, key, ...meta, problems: report.problems };
  return { ready: true, key, scope: buildScope(key, scope) };
}

function buildScope(key: string, v: ValidScope): CompiledScope {
  const allowsRoute = compileRouteMatcher(v.rules);
  const inCidrs = v.sources.cidrs && compileCidrMatcher(v.sources.cidrs);
  const principals = v.sources.principals && new Set(v.sources.principals);
  return Object.freeze({
    key,
    namespace: v.namespace,
    name: v.name,
    owner: v.owner,
    description: v.description,
    mode: v.mode,
    generation: v.generation,
    tokenPolicy: Object.freeze({ ...v.tokenPolicy }),
    rateLimit: v.rateLimit && Object.freeze({ ...v.rateLimit }),
    summary: Object.freeze(summarize(v)),
    allowsRoute,
    allowsSource: (source) =>
      (!inCidrs || inCidrs(source.address)) &&
      (!principals || (source.principal !== undefined && principals.has(source.principal))),
  } satisfies CompiledScope);
}

function ruleLine(rule: RouteRule): string {
  const methods = rule.methods.includes("*") ? "any method" : rule.methods.join(", ");
  const hosts = rule.hosts ? rule.hosts.join(", ") : "any host";
  const paths =
    !rule.paths || rule.paths.includes("/*") ? "at any path" : `paths ${rule.paths.join(", ")}`;
  return `${methods} on ${hosts} ${paths}`;
}

function summarize(v: ValidScope): string[] {
  const lines = v.rules.map(ruleLine);
  const { cidrs, principals } = v.sources;
  if (cidrs) lines.push(`from ${cidrs.map((b) => b.text).join(", ")}`);
  if (principals) lines.push(`called by ${principals.join(", ")}`);
  if (!cidrs && !principals) lines.push("from any source");
  const { maxTTLms, defaultTTLms, rotationGraceMs } = v.tokenPolicy;
  lines.push(
    `tokens live at most ${formatDuration(maxTTLms)} (default ${formatDuration(defaultTTLms)}, rotation grace ${formatDuration(rotationGraceMs)})`,
  );
  const rate = v.rateLimit;
  if (rate)
    lines.push(`at most ${rate.requestsPerSecond} requests/s per token (burst ${rate.burst})`);
  if (v.mode === "DryRun")
    lines.push("DryRun: would-be denials are logged and counted, not enforced");
  return lines;
}
