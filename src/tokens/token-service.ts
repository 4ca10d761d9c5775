// Token lifecycle (SPEC §3): issue, rotate, revoke. The CLI is a thin shell over this.
import { randomBytes } from "node:crypto";
import { formatDuration } from "../domain/duration.ts";
import { generateToken, hashSecret, sealRecord, isValidTokenId } from "../domain/token.ts";
import { rotatedOut, tokenState, type TokenRecord } from "../domain/token-record.ts";
import type { CompiledScope } from "../domain/scope-types.ts";
import { isLabelKey } from "../domain/route-match.ts";
import type { ScopeIndex } from "../scopes/scope-index.ts";
import type { LifecycleAction, LifecycleEvent, TokenStore } from "../store/token-store.ts";
import type { Logger } from "../observability/logger.ts";

/** A request the operator got wrong: printed as is, exit status 2. */
export class TokenRequestError extends Error {
  override readonly name = "TokenRequestError";
}

export interface TokenServiceDeps {
  readonly store: TokenStore;
  readonly scopes: ScopeIndex;
  readonly hmacKey: Uint8Array;
  readonly environment: string;
  readonly clock: () => number;
  readonly randomBytes: (n: number) => Uint8Array;
  readonly logger: Logger;
}

export interface IssueRequest {
  readonly scope: string;
  readonly owner: string;
  readonly ttlMs?: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly description?: string;
  readonly createdBy: string;
}

export interface Issued {
  /** The plaintext token: shown once, never stored. */
  readonly token: string;
  readonly record: TokenRecord;
}

const LABEL_VALUE_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export function readyScope(scopes: ScopeIndex, key: string): CompiledScope {
  const entry = scopes.get(key);
  if (!entry)
    throw new TokenRequestError(
      `scope ${key} does not exist (expected NAMESPACE/NAME of a TokenScope)`,
    );
  if (!entry.ready) {
    const why = entry.problems.map((p) => `${p.field}: ${p.message}`).join("; ");
    throw new TokenRequestError(`scope ${key} is not ready: ${why}`);
  }
  return entry.scope;
}

const OWNER_RE = /^[\x21-\x7e](?:[\x20-\x7e]{0,251}[\x21-\x7e])?$/;

export function createTokenService(deps: TokenServiceDeps) {
  const { store } = deps;

  async function issue(
    req: IssueRequest,
    rotation?: { old: TokenRecord; graceMs?: number },
  ): Promise<Issued> {
    const scope = readyScope(deps.scopes, req.scope);
    if (!req.owner.trim()) throw new TokenRequestError("--owner: every token needs an owner");
    // The owner travels upstream in the x-tokenscope-owner header: printable ASCII only.
    if (!OWNER_RE.test(req.owner)) {
      throw new TokenRequestError(
        "--owner: at most 253 printable ASCII characters, not starting or ending with a space",
      );
    }
    for (const [k, v] of Object.entries(req.labels)) {
      if (!isLabelKey(k)) throw new TokenRequestError(`--label: "${k}" is not a valid label key`);
      if (!LABEL_VALUE_RE.test(v))
        throw new TokenRequestError(`--label: "${v}" is not a valid value for ${k}`);
    }
    const ttl = req.ttlMs ?? scope.tokenPolicy.defaultTTLms;
    if (ttl <= 0) throw new TokenRequestError("--ttl: must be positive");
    if (ttl > scope.tokenPolicy.maxTTLms) {
      throw new TokenRequestError(
        `--ttl: ${formatDuration(ttl)} is longer than scope ${scope.key} allows (maxTTL ${formatDuration(scope.tokenPolicy.maxTTLms)})`,
      );
    }
    const now = deps.clock();
    const { token, parsed } = generateToken(deps.environment, deps.randomBytes);
    const record: TokenRecord = sealRecord(deps.hmacKey, {
      id: parsed.id,
      hash: hashSecret(deps.hmacKey, parsed),
      scope: scope.key,
      owner: req.owner,
      environment: deps.environment,
      labels: { ...req.labels },
      description: req.description ?? "",
      createdAt: now,
      createdBy: req.createdBy,
      notBefore: now,
      expiresAt: now + ttl,
      ...(rotation ? { replaces: rotation.old.id } : {}),
    });
    if (rotation) {
      const graceMs = rotation.graceMs ?? scope.tokenPolicy.rotationGraceMs;
      await store.rotate(rotatedOut(rotation.old, record.id, now, graceMs), record);
    } else {
      await store.create(record);
    }
    return { token, record };
  }

  async function existing(id: string): Promise<TokenRecord> {
    if (!isValidTokenId(id))
      throw new TokenRequestError(`"${id}" is not a token id (12 base62 characters)`);
    const record = await store.get(id);
    if (!record) throw new TokenRequestError(`no token with id ${id}`);
    return record;
  }

  return {
    async issue(req: IssueRequest): Promise<Issued> {
      const issued = await issue(req);
      await auditLifecycle(deps, "issue", issued.record, req.createdBy);
      return issued;
    },

    async rotate(
      id: string,
      opts: { graceMs?: number; by: string },
    ): Promise<{ issued: Issued; old: TokenRecord }> {
      const old = await existing(id);
      const state = tokenState(old, deps.clock());
      if (state !== "active")
        throw new TokenRequestError(`token ${id} is ${state}; only an active token can be rotated`);
      const scope = readyScope(deps.scopes, old.scope);
      // The successor gets the lifetime the old token was issued with, within today's policy.
      const ttlMs = Math.min(old.expiresAt - old.notBefore, scope.tokenPolicy.maxTTLms);
      const request = { ...old, createdBy: opts.by, ttlMs };
      const issued = await issue(request, { old, graceMs: opts.graceMs });
      await auditLifecycle(deps, "rotate", issued.record, opts.by, { replaces: old.id });
      return { issued, old: (await store.get(old.id)) ?? old };
    },

    async revoke(id: string, by: string): Promise<TokenRecord> {
      await existing(id);
      const record = await store.revoke(id, deps.clock());
      await auditLifecycle(deps, "revoke", record, by);
      return record;
    },

    get: existing,
  };
}

export type TokenService = ReturnType<typeof createTokenService>;

/** The token service over opened backends, on the real clock and CSPRNG. */
export function tokenServiceFor(
  backends: { store: TokenStore; scopes: ScopeIndex; hmacKey: Uint8Array },
  environment: string,
  logger: Logger,
): TokenService {
  return createTokenService({ ...backends, environment, clock: Date.now, randomBytes, logger });
}

/** One audit line, and the same event kept durably in the store's audit journal. */
async function auditLifecycle(
  deps: Pick<TokenServiceDeps, "logger" | "store" | "clock">,
  action: LifecycleAction,
  record: TokenRecord,
  by: string,
  extra: { replaces?: string } = {},
): Promise<void> {
  const event: LifecycleEvent = {
    time: deps.clock(),
    event: action,
    token_id: record.id,
    scope: record.scope,
    owner: record.owner,
    by,
    ...extra,
  };
  const { time: _time, ...fields } = event; // the logger stamps its own time
  deps.logger.audit(fields);
  try {
    await deps.store.appendEvent(event);
  } catch (err) {
    // The action itself is done and cannot be undone here; say loudly that its record is missing.
    deps.logger.log("error", "the lifecycle event was not kept in the store's audit journal", {
      event: action,
      token_id: record.id,
      err: String(err),
    });
  }
}
