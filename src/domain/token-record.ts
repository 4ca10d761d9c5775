// The stored token record (SPEC §3) and its lifecycle rules. Times are epoch milliseconds.

export interface TokenRecord {
  readonly id: string;
  /** HMAC-SHA256 of the secret (hex); the plaintext is never stored. */
  readonly hash: string;
  /** "namespace/name" of the TokenScope. */
  readonly scope: string;
  readonly owner: string;
  readonly environment: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly description: string;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly notBefore: number;
  readonly expiresAt: number;
  readonly revokedAt?: number;
  readonly replacedBy?: string;
  readonly replaces?: string;
  readonly graceUntil?: number;
  readonly lastUsedAt?: number;
  readonly lastSource?: string;
  /** Keyed MAC of the immutable fields (sealRecord in token.ts); a record without it never validates. */
  readonly seal?: string;
}

export type TokenState = "active" | "revoked" | "rotated" | "expired" | "not_yet_valid";

/**
 * Lifecycle state at `now`. Every bound is half-open: a token is valid from notBefore (inclusive)
 * until expiresAt / graceUntil (exclusive). Revocation wins over everything else.
 */
export function tokenState(record: TokenRecord, now: number): TokenState {
  if (record.revokedAt !== undefined && record.revokedAt <= now) return "revoked";
  if (record.replacedBy !== undefined && (record.graceUntil ?? 0) <= now) return "rotated";
  if (now >= record.expiresAt) return "expired";
  if (now < record.notBefore) return "not_yet_valid";
  return "active";
}

/**
 * When a record stops mattering; the store keeps it for retention after this. That is its
 * expiry even when it was revoked or rotated out earlier: until then, forgetting the record
 * would let an older backup (`token import`) bring the token back to life.
 */
export function recordEndsAt(record: TokenRecord): number {
  return record.expiresAt;
}

/** The rotated-out record: keeps working until graceUntil, never past its own expiry. */
export function rotatedOut(
  record: TokenRecord,
  newId: string,
  now: number,
  graceMs: number,
): TokenRecord {
  return {
    ...record,
    replacedBy: newId,
    graceUntil: Math.min(now + graceMs, record.expiresAt),
  };
}

export function revoked(record: TokenRecord, now: number): TokenRecord {
  return record.revokedAt !== undefined ? record : { ...record, revokedAt: now };
}
