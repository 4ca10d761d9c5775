// Audit journal entries as stored (Redis stream field, audit.jsonl line). A line that is not a
// well-formed event is skipped by readers, never guessed at.
import type { EventFilter, LifecycleEvent } from "./token-store.ts";

const ACTIONS = new Set(["issue", "rotate", "revoke"]);

export function encodeEvent(event: LifecycleEvent): string {
  return JSON.stringify(event);
}

export function decodeEvent(text: string): LifecycleEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const e = v as Record<string, unknown>;
  const strings = ["token_id", "scope", "owner", "by"].every((k) => typeof e[k] === "string");
  if (!strings || !Number.isFinite(e.time) || !ACTIONS.has(e.event as string)) return undefined;
  if (e.replaces !== undefined && typeof e.replaces !== "string") return undefined;
  return e as unknown as LifecycleEvent;
}

export function matchesEvent(event: LifecycleEvent, filter: EventFilter | undefined): boolean {
  if (filter?.since !== undefined && event.time < filter.since) return false;
  if (filter?.scope !== undefined && event.scope !== filter.scope) return false;
  if (filter?.tokenId !== undefined) {
    // A rotation concerns both tokens: the one issued and the one it replaces.
    if (event.token_id !== filter.tokenId && event.replaces !== filter.tokenId) return false;
  }
  return true;
}
