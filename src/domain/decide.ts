// The decision of SPEC §4 as an ordered list of small checks; the first failure is the reason.
// Pure: the token record and scope are looked up by the caller and passed in, with the clock.
import type { DenyReason } from "./reasons.ts";
import type { CompiledScope, RequestRoute, RequestSource, ScopeEntry } from "./scope-types.ts";
import { parseToken, recordVerified, type ParsedToken } from "./token.ts";
import { tokenState, type TokenRecord } from "./token-record.ts";

export interface TokenIdentity {
  readonly id: string;
  readonly scope: string;
  readonly owner: string;
}

export type Decision =
  | {
      readonly allowed: true;
      readonly reason: "ok";
      readonly token: TokenIdentity;
      readonly scopeNamespace: string;
      /** Set in DryRun mode: what an enforcing scope would have denied. */
      readonly dryRunDeny?: DenyReason;
    }
  | {
      readonly allowed: false;
      readonly reason: DenyReason;
      /** Only once the secret has been verified: garbage never names a token. */
      readonly token?: TokenIdentity;
      readonly scopeNamespace?: string;
      readonly dryRunDeny?: undefined;
      /** rate_limited only: when a retry could be allowed (retry-after). */
      readonly retryAfterMs?: number;
    };

export function deny(reason: DenyReason, token?: TokenIdentity, scopeNamespace?: string): Decision {
  return { allowed: false, reason, token, scopeNamespace };
}

const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Steps 1–3: a bearer token is present, well-formed, and of this environment. No store needed.
 * `authorization` holds every authorization header value; more than one is ambiguous.
 */
export function readCredential(
  authorization: readonly string[],
  environment: string,
): ParsedToken | Decision {
  if (authorization.length === 0) return deny("missing_token");
  if (authorization.length > 1) return deny("malformed_token");
  const match = BEARER_RE.exec(authorization[0] ?? "");
  if (!match) {
    // Another scheme (Basic, ...) carries no tokenscope token at all.
    return /^Bearer(\s|$)/i.test(authorization[0] ?? "")
      ? deny("malformed_token")
      : deny("missing_token");
  }
  const token = parseToken(match[1] ?? "");
  if (!token) return deny("malformed_token");
  if (token.environment !== environment) return deny("environment_mismatch");
  return token;
}

export type RecordLookup =
  | { readonly found: true; readonly record: TokenRecord }
  | { readonly found: false }
  | { readonly unavailable: true };

export interface DecisionInput {
  readonly token: ParsedToken;
  readonly lookup: RecordLookup;
  readonly hmacKey: Uint8Array;
  readonly now: number;
  readonly scope: ScopeEntry | undefined;
  /**
   * The token's scope lives in a namespace this server does not watch (--watch-namespace, as
   * an injected sidecar runs): it cannot be found here by construction, and the truthful reason
   * is that the token belongs to another namespace.
   */
  readonly scopeOutOfView?: boolean;
  /** Resolved destination namespace (see resolveNamespace), undefined when unknown. */
  readonly namespace: string | undefined;
  readonly route: RequestRoute;
  readonly source: RequestSource;
}

/** Steps 4 onwards, after the record lookup. */
export function decide(input: DecisionInput): Decision {
  const { lookup } = input;
  if ("unavailable" in lookup) return deny("store_unavailable");
  if (!lookup.found) return deny("unknown_token");
  const record = lookup.record;
  if (
    record.id !== input.token.id ||
    record.environment !== input.token.environment ||
    // The secret's keyed hash, then the seal: a record whose scope, labels, owner or lifetime
    // were changed without the key.
    !recordVerified(input.hmacKey, input.token, record)
  ) {
    return deny("unknown_token");
  }
  const identity: TokenIdentity = { id: record.id, scope: record.scope, owner: record.owner };
  const state = tokenState(record, input.now);
  if (state !== "active") return deny(state, identity);
  const entry = input.scope;
  if (!entry)
    return deny(input.scopeOutOfView ? "namespace_mismatch" : "scope_not_found", identity);
  if (!entry.ready) return deny("scope_not_ready", identity);
  const scope = entry.scope;
  // The namespace boundary holds in every mode: a TokenScope only ever grants its own namespace
  // (SPEC §2), so DryRun may relax a scope's rules, never where its tokens work.
  if (input.namespace === undefined) return deny("unknown_namespace", identity, scope.namespace);
  if (input.namespace !== scope.namespace) {
    return deny("namespace_mismatch", identity, scope.namespace);
  }
  const scopeDeny = firstScopeFailure(scope, input, record.labels);
  if (scopeDeny === undefined) {
    return { allowed: true, reason: "ok", token: identity, scopeNamespace: scope.namespace };
  }
  if (scope.mode === "DryRun") {
    return {
      allowed: true,
      reason: "ok",
      token: identity,
      scopeNamespace: scope.namespace,
      dryRunDeny: scopeDeny,
    };
  }
  return deny(scopeDeny, identity, scope.namespace);
}

/** The scope's rules within its namespace: what a DryRun scope reports instead of enforcing. */
function firstScopeFailure(
  scope: CompiledScope,
  input: DecisionInput,
  labels: TokenRecord["labels"],
): DenyReason | undefined {
  if (!scope.allowsSource(input.source)) return "source_not_allowed";
  if (!scope.allowsRoute(input.route, labels)) return "route_not_allowed";
  return undefined;
}

export function isDecision(x: ParsedToken | Decision): x is Decision {
  return "allowed" in x;
}
