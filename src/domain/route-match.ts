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

export function pathPatternProblem(pattern: string): string | undefined {
  if (!pattern.startsWith("/")) return 'must start with "/"';
  if (pattern.length > MAX_PATH_PATTERN) return `must be at most ${MAX_PATH_PATTERN} characters`;
  // Templates are part of SPEC §2 but need the token's labels at match time; not built yet.
  if (pattern.includes("{")) return "label templates ({token.labels.KEY}) are not supported yet";
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
  readonly methods?: ReadonlySet<string>;
}

function compileRule(rule: RouteRule): CompiledRule {
  const hosts = rule.hosts ?? [];
  const paths = rule.paths ?? ["/*"];
  return {
    exactHosts: rule.hosts && new Set(hosts.filter((h) => !h.startsWith("*."))),
    hostSuffixes: hosts.filter((h) => h.startsWith("*.")).map((h) => h.slice(1)),
    anyPath: paths.includes("/*"),
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

function pathMatches(rule: CompiledRule, path: string): boolean {
  if (rule.anyPath || rule.exactPaths.has(path)) return true;
  return rule.pathPrefixes.some((prefix) => path.startsWith(prefix));
}

/** allowsRoute for a scope: true when any rule matches host, path and method. */
export function compileRouteMatcher(rules: readonly RouteRule[]): (route: RequestRoute) => boolean {
  const compiled = rules.map(compileRule);
  return (route) => {
    const path = normalizeRequestPath(route.path);
    if (path === undefined) return false;
    const host = normalizeHost(route.host);
    const method = route.method.toUpperCase();
    return compiled.some(
      (rule) =>
        (!rule.methods || rule.methods.has(method)) &&
        hostMatches(rule, host) &&
        pathMatches(rule, path),
    );
  };
}
