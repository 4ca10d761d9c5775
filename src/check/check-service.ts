// One Check, transport-neutral: credential → record (store, with deadline) → scope (memory) →
// decide → metrics and audit. Never throws: any unexpected failure is a deny (fail closed).
import {
  decide,
  deny,
  isDecision,
  readCredential,
  type Decision,
  type RecordLookup,
} from "../domain/decide.ts";
import { resolveNamespace } from "../domain/namespace.ts";
import type { CheckView } from "../envoy/from-check-request.ts";
import { enforceRateLimit } from "./rate-limit-step.ts";
import type { ScopeIndex } from "../scopes/scope-index.ts";
import type { TokenStore } from "../store/token-store.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";

export interface CheckServiceDeps {
  readonly environment: string;
  readonly serverNamespace: string | undefined;
  readonly hmacKey: Uint8Array;
  readonly store: TokenStore;
  readonly scopes: ScopeIndex;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly clock: () => number;
  /** Fraction of allows written to the audit log (SPEC §6 --audit-allow-sample). */
  readonly auditAllowSample: number;
  readonly random?: () => number;
  /** Set when only this namespace's TokenScopes are watched (--watch-namespace, sidecars). */
  readonly watchNamespace?: string;
  /** Notes each verified token's use (lastUsedAt/lastSource), written back off the request path. */
  readonly usage?: { seen(id: string, at: number, source: string | undefined): void };
}

export interface CheckResult {
  readonly decision: Decision;
  readonly namespace: string | undefined;
}

export type CheckService = (view: CheckView) => Promise<CheckResult>;

export function createCheckService(deps: CheckServiceDeps): CheckService {
  const random = deps.random ?? Math.random;

  async function lookup(id: string): Promise<RecordLookup> {
    try {
      const record = await deps.store.get(id);
      return record ? { found: true, record } : { found: false };
    } catch {
      // The store reports its own errors (metrics, log); here it only means: fail closed.
      return { unavailable: true };
    }
  }

  async function evaluate(view: CheckView, namespace: string | undefined): Promise<Decision> {
    const credential = readCredential(view.authorization, deps.environment);
    if (isDecision(credential)) return credential;
    const record = await lookup(credential.id);
    const scopeKey = "found" in record && record.found ? record.record.scope : undefined;
    const scope = scopeKey === undefined ? undefined : deps.scopes.get(scopeKey);
    const decision = decide({
      token: credential,
      lookup: record,
      hmacKey: deps.hmacKey,
      now: deps.clock(),
      scope,
      scopeOutOfView:
        deps.watchNamespace !== undefined &&
        scopeKey !== undefined &&
        !scopeKey.startsWith(`${deps.watchNamespace}/`),
      namespace,
      route: view.route,
      source: view.source,
    });
    return enforceRateLimit(decision, scope, deps.store);
  }

  return async (view) => {
    const started = performance.now();
    const namespace = resolveNamespace({
      serverNamespace: deps.serverNamespace,
      ...view.namespaceSources,
    });
    let decision: Decision;
    try {
      decision = await evaluate(view, namespace);
    } catch (err) {
      deps.logger.log("error", "check failed unexpectedly; denying", { err });
      decision = deny("store_unavailable");
    }
    // The namespace a caller names is a label only if some scope lives there: a caller (any pod
    // can reach us) must not be able to mint a metric series per made-up namespace.
    const nsLabel =
      namespace === undefined || deps.scopes.hasNamespace(namespace) ? namespace : "_other";
    deps.metrics.recordCheck(decision, nsLabel, (performance.now() - started) / 1e3);
    if (decision.token !== undefined) {
      deps.usage?.seen(decision.token.id, deps.clock(), usageSource(view.source));
    }
    if (!decision.allowed || decision.dryRunDeny || random() < deps.auditAllowSample) {
      audit(deps.logger, view, decision, namespace);
    }
    return { decision, namespace };
  };
}

function usageSource(source: CheckView["source"]): string | undefined {
  if (source.address && source.principal) return `${source.address} (${source.principal})`;
  return source.address || source.principal || undefined;
}

function audit(
  logger: Logger,
  view: CheckView,
  decision: Decision,
  namespace: string | undefined,
): void {
  logger.audit({
    event: "check",
    decision: decision.allowed ? (decision.dryRunDeny ? "dry_run_deny" : "allow") : "deny",
    reason: decision.dryRunDeny ?? decision.reason,
    token_id: decision.token?.id,
    owner: decision.token?.owner,
    scope: decision.token?.scope,
    namespace,
    method: view.route.method,
    host: view.route.host,
    // The query string can carry credentials of the upstream's own; it is not audit material.
    path: pathOnly(view.route.path),
    source: view.source.address,
    source_principal: view.source.principal,
    request_id: view.requestId,
  });
}

function pathOnly(path: string): string {
  const query = path.indexOf("?");
  return query < 0 ? path : path.slice(0, query);
}
