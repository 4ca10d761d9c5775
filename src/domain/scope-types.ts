// What the rest of tokenscope sees of a TokenScope once it has been validated and compiled.

export type ScopeMode = "Enforce" | "DryRun";

export interface TokenPolicy {
  readonly maxTTLms: number;
  readonly defaultTTLms: number;
  readonly rotationGraceMs: number;
}

export interface RateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

export interface RequestSource {
  /** IP address of the downstream peer, as Envoy reports it (no port). */
  readonly address?: string;
  /** mTLS identity of the calling workload, e.g. spiffe://cluster.local/ns/ci/sa/reporter. */
  readonly principal?: string;
}

export interface RequestRoute {
  /** The :authority / Host as received (may carry a port, any case). */
  readonly host: string;
  /** The :path as received (may carry a query string). */
  readonly path: string;
  readonly method: string;
}

export interface CompiledScope {
  /** "namespace/name" */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly owner: string;
  readonly description: string;
  readonly mode: ScopeMode;
  readonly generation: number;
  readonly tokenPolicy: TokenPolicy;
  readonly rateLimit?: RateLimit;
  /** Human-readable lines for `token inspect`: what the scope allows. */
  readonly summary: readonly string[];
  allowsSource(source: RequestSource): boolean;
  /** `labels`: the token's, for rule paths with "{token.labels.KEY}" templates. */
  allowsRoute(route: RequestRoute, labels?: Readonly<Record<string, string>>): boolean;
}

/** One problem with a manifest: the field path (e.g. "spec.rules[0].methods[1]") and why. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

export type ScopeEntry =
  | { readonly ready: true; readonly key: string; readonly scope: CompiledScope }
  | {
      readonly ready: false;
      readonly key: string;
      readonly namespace: string;
      readonly name: string;
      readonly problems: readonly FieldProblem[];
    };

export interface ScopeValidationOptions {
  /** Installation-wide cap on tokenPolicy.maxTTL (admission rejects more). */
  readonly maxTTLCapMs: number;
}

export const DEFAULT_MAX_TTL_MS = 2160 * 3_600_000;
