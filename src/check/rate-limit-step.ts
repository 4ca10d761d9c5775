// The rate check of SPEC §4, after the pure decision allowed the request: it needs the store
// (one atomic step shared by every replica), so it cannot live in domain/decide.
import { deny, type Decision } from "../domain/decide.ts";
import { applyRateOutcome, rateKey } from "../domain/rate-limit.ts";
import type { ScopeEntry } from "../domain/scope-types.ts";
import type { TokenStore } from "../store/token-store.ts";

export async function enforceRateLimit(
  decision: Decision,
  entry: ScopeEntry | undefined,
  store: TokenStore,
): Promise<Decision> {
  // A DryRun would-deny already names its first failure; denials never spend the budget.
  if (!decision.allowed || decision.dryRunDeny !== undefined || !entry?.ready) return decision;
  const limit = entry.scope.rateLimit;
  if (limit === undefined) return decision;
  try {
    const outcome = await store.consumeRate(rateKey(decision.token), limit);
    return applyRateOutcome(decision, entry.scope.mode, outcome);
  } catch {
    // The store reports its own errors; an unanswered rate check is never an allow.
    return deny("store_unavailable", decision.token, decision.scopeNamespace);
  }
}
