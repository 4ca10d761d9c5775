// A small reference model of SPEC §4 (with the README's matching rules), written from the text
// and sharing no code with src/: its own token parser, CIDR check (node:net BlockList), host and
// path rules. The differential test checks the real service against it case by case.
import { BlockList, isIP } from "node:net";
import { check6 } from "../fuzz/generators.ts";

export interface ModelRule {
  readonly hosts?: readonly string[];
  readonly paths?: readonly string[];
  readonly methods: readonly string[];
}

export interface ModelScope {
  readonly namespace: string;
  readonly name: string;
  /** False when the manifest is invalid (the scope exists but is not ready). */
  readonly valid: boolean;
  readonly dryRun: boolean;
  readonly rules: readonly ModelRule[];
  readonly cidrs?: readonly string[];
  readonly principals?: readonly string[];
}

export interface ModelRecord {
  readonly id: string;
  readonly secret: string;
  readonly scope: string;
  readonly notBefore: number;
  readonly expiresAt: number;
  readonly revokedAt?: number;
  readonly replacedBy?: string;
  readonly graceUntil?: number;
}

export interface ModelRequest {
  readonly authorization: readonly string[];
  readonly host: string;
  readonly path: string;
  readonly method: string;
  readonly sourceAddress?: string;
  readonly sourcePrincipal?: string;
  readonly contextNamespace?: string;
  readonly destinationPrincipal?: string;
}

export interface ModelWorld {
  readonly environment: string;
  readonly serverNamespace?: string;
  readonly scopes: ReadonlyMap<string, ModelScope>;
  readonly records: ReadonlyMap<string, ModelRecord>;
}

export type ModelOutcome =
  | { readonly allowed: true; readonly dryRunDeny?: string }
  | { readonly allowed: false; readonly reason: string };

const TOKEN = /^tks_([a-z0-9]{1,12})_([0-9A-Za-z]{12})([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;
const NS = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const no = (reason: string): ModelOutcome => ({ allowed: false, reason });

/** The bearer credential: absent, unusable, or the token text. */
function credential(headers: readonly string[]): string | ModelOutcome {
  if (headers.length === 0) return no("missing_token");
  if (headers.length > 1) return no("malformed_token");
  const value = headers[0] ?? "";
  const space = value.search(/[ \t]/);
  const scheme = space < 0 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== "bearer") return no("missing_token");
  const rest = space < 0 ? "" : value.slice(space).replace(/^[ \t]+|[ \t]+$/g, "");
  if (rest === "" || /\s/.test(rest)) return no("malformed_token");
  return rest;
}

function destinationNamespace(world: ModelWorld, req: ModelRequest): string | undefined {
  if (world.serverNamespace) return world.serverNamespace;
  if (req.contextNamespace !== undefined && req.contextNamespace !== "") {
    return NS.test(req.contextNamespace) ? req.contextNamespace : undefined;
  }
  const parts = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(req.destinationPrincipal ?? "");
  return parts?.[1] !== undefined && NS.test(parts[1]) ? parts[1] : undefined;
}

function inCidrs(cidrs: readonly string[], address: string | undefined): boolean {
  if (address === undefined) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const addr = mapped?.[1] ?? address;
  const family = isIP(addr);
  if (family === 0) return false;
  const list = new BlockList();
  for (const c of cidrs) {
    const [net = "", bits = ""] = c.split("/");
    list.addSubnet(net, Number(bits), isIP(net) === 6 ? "ipv6" : "ipv4");
  }
  return list.check(addr, family === 6 ? "ipv6" : "ipv4");
}

function hostOf(raw: string): string {
  let h = raw;
  if ((h.match(/:/g) ?? []).length === 1) h = h.slice(0, h.indexOf(":"));
  h = h.toLowerCase();
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

function hostAllowed(patterns: readonly string[] | undefined, host: string): boolean {
  if (!patterns) return true;
  return patterns.some((p) => {
    if (!p.startsWith("*.")) return p === host;
    const suffix = p.slice(1);
    const head = host.slice(0, host.length - suffix.length);
    return host.endsWith(suffix) && head !== "" && head.split(".").every((l) => l !== "");
  });
}

/** The path as matched, or undefined when it must match nothing (README "Matching, precisely"). */
function pathOf(raw: string): string | undefined {
  const path = raw.split(/[?#]/, 1)[0] ?? "";
  if (/%2f|%5c|%25/i.test(path)) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  const segments = decoded.split("/").slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === "." || s === "..") return undefined;
    if (s === "" && i < segments.length - 1) return undefined;
  }
  return decoded;
}

function pathAllowed(patterns: readonly string[] | undefined, path: string): boolean {
  if (!patterns) return true;
  return patterns.some((p) => (p.endsWith("/*") ? path.startsWith(p.slice(0, -1)) : p === path));
}

function routeAllowed(scope: ModelScope, req: ModelRequest): boolean {
  const path = pathOf(req.path);
  if (path === undefined) return false;
  const host = hostOf(req.host);
  const method = req.method.toUpperCase();
  return scope.rules.some(
    (r) =>
      (r.methods.includes("*") || r.methods.includes(method)) &&
      hostAllowed(r.hosts, host) &&
      pathAllowed(r.paths, path),
  );
}

function scopeFailure(world: ModelWorld, scope: ModelScope, req: ModelRequest): string | undefined {
  const ns = destinationNamespace(world, req);
  if (ns === undefined) return "unknown_namespace";
  if (ns !== scope.namespace) return "namespace_mismatch";
  if (scope.cidrs && !inCidrs(scope.cidrs, req.sourceAddress)) return "source_not_allowed";
  if (scope.principals && !scope.principals.includes(req.sourcePrincipal ?? "")) {
    return "source_not_allowed";
  }
  if (!routeAllowed(scope, req)) return "route_not_allowed";
  return undefined;
}

export function modelDecision(world: ModelWorld, req: ModelRequest, now: number): ModelOutcome {
  const text = credential(req.authorization);
  if (typeof text !== "string") return text;
  const m = TOKEN.exec(text);
  if (!m || check6(text.slice(0, -6)) !== m[4]) return no("malformed_token");
  if (m[1] !== world.environment) return no("environment_mismatch");
  const record = world.records.get(m[2] ?? "");
  if (!record || record.secret !== m[3]) return no("unknown_token");
  if (record.revokedAt !== undefined && record.revokedAt <= now) return no("revoked");
  if (record.replacedBy !== undefined && (record.graceUntil ?? 0) <= now) return no("rotated");
  if (now >= record.expiresAt) return no("expired");
  if (now < record.notBefore) return no("not_yet_valid");
  const scope = world.scopes.get(record.scope);
  if (!scope) return no("scope_not_found");
  if (!scope.valid) return no("scope_not_ready");
  const failure = scopeFailure(world, scope, req);
  if (failure === undefined) return { allowed: true };
  // DryRun relaxes the scope's rules, never its namespace (README "How a request is decided").
  const namespaceFailure = failure === "unknown_namespace" || failure === "namespace_mismatch";
  return scope.dryRun && !namespaceFailure ? { allowed: true, dryRunDeny: failure } : no(failure);
}
