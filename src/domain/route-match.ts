// Host, path and method matching for TokenScope rules. Patterns are checked and compiled once
// (sets, suffix and prefix lists); on each request the route is normalized once, then compared.
import type { RequestRoute } from "./scope-types.ts";

/** A validated rule; undefined hosts/paths = any; methods ["*"] = any. */
export interface RouteRule {
  readonly hosts?: readonly string[];
  readonly paths?: readonly string[];
  readonly methods: readonly string[];
}

const DNS_LABEL = "[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?";
const DNS_NAME_RE = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);
/** What may precede a "*." suffix in a request host: one or more non-empty labels. */
const WILDCARD_LABELS_RE = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const METHOD_TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const MAX_PATH_PATTERN = 1024;
const SPACE_OR_CONTROL_RE = /[\s\p{Cc}]/u;
const LABEL_TEMPLATE_SEGMENT_RE = /^\{token\.labels\.([^{}]*)\}$/;
const LABEL_TEMPLATE_GLOBAL_RE = /\{token\.labels\.[^{}/]*\}/g;
/** A label key as `token issue --label` accepts it. */
const LABEL_KEY_RE = /^[a-z0-9](?:[-a-z0-9_.]{0,61}[a-z0-9])?$/;
/** A label value that can stand for one path segment: unreserved characters, not "." or "..". */
const SAFE_SEGMENT_RE = /^[A-Za-z0-9._~-]+$/;

/** Label keys a token may carry (also what rule templates may name). */
export function isLabelKey(key: string): boolean {
  return LABEL_KEY_RE.test(key);
}

/** The labels of a token, as the route matcher reads them. */
export type TokenLabels = Readonly<Record<string, string>>;

export function hostPatternProblem(pattern: string): string | undefined {
  if (pattern === "*") return 'a bare "*" is not allowed; omit hosts to allow any host';
  if (pattern.includes(":") || pattern.includes("[")) return "must not include a port";
  if (pattern !== pattern.toLowerCase()) return "must be lowercase";
  if (pattern.endsWith(".")) return "must not end with a dot";
  const name = pattern.startsWith("*.") ? pattern.slice(2) : pattern;
  if (name.length > 253 || !DNS_NAME_RE.test(name)) {
    return 'must be a DNS name ("api.example.com") or "*." and a DNS suffix ("*.example.com")';
  }
  return undefined;
}

export function pathPatternProblem(raw: string): string | undefined {
  if (!raw.startsWith("/")) return 'must start with "/"';
  if (raw.length > MAX_PATH_PATTERN) return `must be at most ${MAX_PATH_PATTERN} characters`;
  const templateProblem = labelTemplateProblem(raw);
  if (templateProblem !== undefined) return templateProblem;
  // A template stands for one safe segment; what is around it must pass the checks below.
  const pattern = raw.replaceAll(LABEL_TEMPLATE_GLOBAL_RE, "label");
  if (SPACE_OR_CONTROL_RE.test(pattern)) return "must not contain whitespace or control characters";
  if (pattern.includes("?")) return "must not contain a query string (?)";
  if (pattern.includes("#")) return "must not contain a fragment (#)";
  if (pattern.includes("%")) return "must not be percent-encoded; write the decoded path";
  if (pattern.includes("\\")) return "must not contain a backslash";
  const star = pattern.indexOf("*");
  if (star >= 0 && (star !== pattern.length - 1 || !pattern.endsWith("/*"))) {
    return '"*" is only allowed as a trailing "/*" (prefix match)';
  }
  const body = star >= 0 ? pattern.slice(0, -1) : pattern;
  if (hasAmbiguousSegment(body)) return 'must not contain ".", ".." or empty ("//") segments';
  return undefined;
}

export function methodProblem(method: string): string | undefined {
  if (method === "*") return undefined;
  if (method.length > 32 || !METHOD_TOKEN_RE.test(method)) return "is not an HTTP method token";
  if (method.includes("*")) return '"*" must stand alone (any method)';
  if (method !== method.toUpperCase()) return `must be uppercase ("${method.toUpperCase()}")`;
  return undefined;
}

/**
 * Templates ("{token.labels.KEY}") are whole path segments naming a label key as `token issue
 * --label` accepts it; anything else with a brace is refused rather than matched literally.
 */
function labelTemplateProblem(pattern: string): string | undefined {
  if (!pattern.includes("{") && !pattern.includes("}")) return undefined;
  for (const segment of pattern.split("/")) {
    if (!segment.includes("{") && !segment.includes("}")) continue;
    const match = LABEL_TEMPLATE_SEGMENT_RE.exec(segment);
    if (!match) {
      return `"${segment}": a label template must be a whole path segment "{token.labels.KEY}"`;
    }
    if (!isLabelKey(match[1] ?? "")) {
      return `"${segment}": the label key must be lowercase letters, digits, '-', '_' or '.', at most 63 characters, starting and ending with a letter or digit`;
    }
  }
  return undefined;
}

/** Host as compared: no port, lowercase, without one trailing dot. */
export function normalizeHost(raw: string): string {
  let host = raw;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end >= 0) host = host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(":");
    // More than one colon is a bare IPv6 literal, which has no port.
    if (colon >= 0 && !host.includes(":", colon + 1)) host = host.slice(0, colon);
  }
  host = host.toLowerCase();
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

/** A "." or ".." segment (also before a ";param", which Tomcat strips) or an interior "//". */
function hasAmbiguousSegment(path: string): boolean {
  const segments = path.split("/");
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] ?? "";
    const semi = segment.indexOf(";");
    const name = semi >= 0 ? segment.slice(0, semi) : segment;
    if (name === "." || name === "..") return true;
    if (segment === "" && i < segments.length - 1) return true;
  }
  return false;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** Decoded bytes that would let one path mean two things to the proxy and the upstream. */
function isForbiddenDecodedByte(byte: number): boolean {
  return byte < 0x20 || byte === 0x7f || byte === 0x2f || byte === 0x5c || byte === 0x25;
}

/**
 * The request path as matched: no query or fragment, percent-decoded. Undefined when it is
 * ambiguous or an attack (bad escapes, encoded "/" "\" or "%", control characters, non-ASCII
 * bytes, dot segments, "//"): such a path matches no rule, so it is denied, never guessed at.
 */
export function normalizeRequestPath(raw: string): string | undefined {
  let end = raw.length;
  const query = raw.indexOf("?");
  if (query >= 0) end = query;
  const fragment = raw.indexOf("#");
  if (fragment >= 0 && fragment < end) end = fragment;
  const path = end === raw.length ? raw : raw.slice(0, end);
  if (path.charCodeAt(0) !== 0x2f) return undefined;
  let escaped = false;
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f || code === 0x5c) return undefined;
    if (code !== 0x25) continue;
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0 || isForbiddenDecodedByte(hi * 16 + lo)) return undefined;
    escaped = true;
    i += 2;
  }
  let decoded = path;
  if (escaped) {
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return undefined; // not UTF-8
    }
  }
  return hasAmbiguousSegment(decoded) ? undefined : decoded;
}

interface CompiledRule {
  readonly exactHosts?: ReadonlySet<string>;
  readonly hostSuffixes: readonly string[];
  readonly anyPath: boolean;
  readonly exactPaths: ReadonlySet<string>;
  readonly pathPrefixes: readonly string[];
  /** Patterns with label templates, resolved against the token's labels on each request. */
  readonly templated: readonly TemplatedPath[];
  readonly methods?: ReadonlySet<string>;
}

interface TemplatedPath {
  /** Literal segments, and label keys where the pattern has a template. */
  readonly segments: readonly ({ readonly literal: string } | { readonly label: string })[];
  readonly prefix: boolean;
}

function compileTemplate(pattern: string): TemplatedPath {
  const prefix = pattern.endsWith("/*");
  const body = prefix ? pattern.slice(0, -1) : pattern;
  const segments = body.split("/").map((segment) => {
    const key = LABEL_TEMPLATE_SEGMENT_RE.exec(segment)?.[1];
    return key === undefined ? { literal: segment } : { label: key };
  });
  return { segments, prefix };
}

/** The label's value when it can stand for one path segment, else undefined. */
export function labelSegment(labels: TokenLabels | undefined, key: string): string | undefined {
  const value = labels && Object.hasOwn(labels, key) ? labels[key] : undefined;
  if (typeof value !== "string" || !SAFE_SEGMENT_RE.test(value)) return undefined;
  return value === "." || value === ".." ? undefined : value;
}

/** A text with "{token.labels.KEY}" templates resolved for one token (for `token inspect`). */
export function resolveLabelTemplates(text: string, labels: TokenLabels): string {
  return text.replaceAll(LABEL_TEMPLATE_GLOBAL_RE, (template) => {
    const key = template.slice("{token.labels.".length, -1);
    return (
      labelSegment(labels, key) ?? `{token.labels.${key}: not set on this token, matches nothing}`
    );
  });
}

/**
 * The pattern with the token's label values in place, or undefined when a label is missing or
 * its value is not one safe segment: then the pattern matches nothing for this token.
 */
function resolveTemplate(template: TemplatedPath, labels: TokenLabels | undefined) {
  const parts: string[] = [];
  for (const segment of template.segments) {
    if ("literal" in segment) {
      parts.push(segment.literal);
      continue;
    }
    const value =
      labels && Object.hasOwn(labels, segment.label) ? labels[segment.label] : undefined;
    if (typeof value !== "string" || !SAFE_SEGMENT_RE.test(value)) return undefined;
    if (value === "." || value === "..") return undefined;
    parts.push(value);
  }
  return parts.join("/");
}

function compileRule(rule: RouteRule): CompiledRule {
  const hosts = rule.hosts ?? [];
  const all = rule.paths ?? ["/*"];
  const isTemplate = (p: string) => p.includes("{");
  const paths = all.filter((p) => !isTemplate(p));
  return {
    exactHosts: rule.hosts && new Set(hosts.filter((h) => !h.startsWith("*."))),
    hostSuffixes: hosts.filter((h) => h.startsWith("*.")).map((h) => h.slice(1)),
    anyPath: paths.includes("/*"),
    templated: all.filter(isTemplate).map(compileTemplate),
    exactPaths: new Set(paths.filter((p) => !p.endsWith("/*"))),
    pathPrefixes: paths.filter((p) => p.endsWith("/*")).map((p) => p.slice(0, -1)),
    methods: rule.methods.includes("*") ? undefined : new Set(rule.methods),
  };
}

function hostMatches(rule: CompiledRule, host: string): boolean {
  if (!rule.exactHosts || rule.exactHosts.has(host)) return true;
  for (const suffix of rule.hostSuffixes) {
    const labels = host.length > suffix.length && host.endsWith(suffix);
    if (labels && WILDCARD_LABELS_RE.test(host.slice(0, host.length - suffix.length))) return true;
  }
  return false;
}

function pathMatches(rule: CompiledRule, path: string, labels: TokenLabels | undefined): boolean {
  if (rule.anyPath || rule.exactPaths.has(path)) return true;
  if (rule.pathPrefixes.some((prefix) => path.startsWith(prefix))) return true;
  return rule.templated.some((template) => {
    const resolved = resolveTemplate(template, labels);
    if (resolved === undefined) return false;
    return template.prefix ? path.startsWith(resolved) : path === resolved;
  });
}

/**
 * allowsRoute for a scope: true when any rule matches host, path and method. `labels` are the
 * token's, for patterns with "{token.labels.KEY}" templates.
 */
export function compileRouteMatcher(
  rules: readonly RouteRule[],
): (route: RequestRoute, labels?: TokenLabels) => boolean {
  const compiled = rules.map(compileRule);
  return (route, labels) => {
    const path = normalizeRequestPath(route.path);
    if (path === undefined) return false;
    const host = normalizeHost(route.host);
    const method = route.method.toUpperCase();
    return compiled.some(
      (rule) =>
        (!rule.methods || rule.methods.has(method)) &&
        hostMatches(rule, host) &&
        pathMatches(rule, path, labels),
    );
  };
}
