// The token inventory of SPEC §6 (tokenscope_tokens{scope,state}): every retained record falls in
// exactly one of four states. Pure: the records and the clock are passed in.
import { tokenState, type TokenRecord } from "./token-record.ts";

export const INVENTORY_STATES = ["active", "expiring_soon", "expired", "revoked"] as const;
export type InventoryState = (typeof INVENTORY_STATES)[number];

/**
 * A rotated-out token past its grace period counts as expired (its grace ran out); one still in
 * grace is active, and expiring soon when the grace ends within the window. A not-yet-valid token
 * is active: it was issued to be used.
 */
export function inventoryState(
  record: TokenRecord,
  now: number,
  expiringSoonMs: number,
): InventoryState {
  const state = tokenState(record, now);
  if (state === "revoked") return "revoked";
  if (state === "expired" || state === "rotated") return "expired";
  const endsAt = Math.min(record.expiresAt, record.graceUntil ?? Infinity);
  return endsAt - now <= expiringSoonMs ? "expiring_soon" : "active";
}

export type InventoryCounts = Map<string, Record<InventoryState, number>>;

/** scope → state → count; every state of every scope named in `scopes` or a record is present. */
export function countInventory(
  records: Iterable<TokenRecord>,
  scopes: Iterable<string>,
  now: number,
  expiringSoonMs: number,
): InventoryCounts {
  const counter = inventoryCounter(scopes, now, expiringSoonMs);
  for (const record of records) counter.add(record);
  return counter.counts;
}

/** countInventory one record at a time, for records that arrive in pages. */
export function inventoryCounter(
  scopes: Iterable<string>,
  now: number,
  expiringSoonMs: number,
): { add(record: TokenRecord): void; readonly counts: InventoryCounts } {
  const counts: InventoryCounts = new Map();
  const row = (scope: string): Record<InventoryState, number> => {
    let r = counts.get(scope);
    if (r === undefined) {
      r = { active: 0, expiring_soon: 0, expired: 0, revoked: 0 };
      counts.set(scope, r);
    }
    return r;
  };
  for (const scope of scopes) row(scope);
  return {
    add: (record) => row(record.scope)[inventoryState(record, now, expiringSoonMs)]++,
    counts,
  };
}
