// How token records read to a person (`list`, `inspect`) and to a machine (-o json).
// Never prints a secret: records hold only the hash, and the hash is left out too.
import { formatDuration } from "../domain/duration.ts";
import { tokenState, type TokenRecord } from "../domain/token-record.ts";
import type { ScopeIndex } from "../scopes/scope-index.ts";
import { resolveLabelTemplates } from "../domain/route-match.ts";

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function recordJson(record: TokenRecord, now: number): Record<string, unknown> {
  const { hash: _hash, ...rest } = record;
  return {
    ...rest,
    state: tokenState(record, now),
    createdAt: iso(record.createdAt),
    notBefore: iso(record.notBefore),
    expiresAt: iso(record.expiresAt),
    revokedAt: iso(record.revokedAt),
    graceUntil: iso(record.graceUntil),
    lastUsedAt: iso(record.lastUsedAt),
  };
}

export function printRecordTable(records: readonly TokenRecord[], now: number): string {
  if (records.length === 0) return "No tokens.";
  const rows = [["ID", "SCOPE", "OWNER", "STATE", "EXPIRES", "LAST USED"]];
  for (const r of records) {
    rows.push([
      r.id,
      r.scope,
      r.owner,
      tokenState(r, now),
      relative(r.expiresAt, now),
      r.lastUsedAt === undefined ? "never" : relative(r.lastUsedAt, now),
    ]);
  }
  const widths =
    rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** Coarse, as kubectl shows ages: seconds only under an hour, never milliseconds. */
function relative(at: number, now: number): string {
  const d = Math.abs(at - now);
  const unit = d >= 3_600_000 ? 60_000 : 1000;
  const text = formatDuration(Math.max(unit, Math.round(d / unit) * unit));
  return at >= now ? `in ${text}` : `${text} ago`;
}

/** The record, then in words what the token can and cannot touch. */
export function describeRecord(record: TokenRecord, scopes: ScopeIndex, now: number): string[] {
  const state = tokenState(record, now);
  const lines = [
    `id:          ${record.id}`,
    `scope:       ${record.scope}`,
    `owner:       ${record.owner}`,
    `environment: ${record.environment}`,
    `state:       ${state}`,
    `created:     ${iso(record.createdAt)} by ${record.createdBy}`,
    `valid:       ${iso(record.notBefore)} → ${iso(record.expiresAt)} (${relative(record.expiresAt, now)})`,
  ];
  if (record.description) lines.push(`description: ${record.description}`);
  const labels = Object.entries(record.labels);
  if (labels.length > 0)
    lines.push(`labels:      ${labels.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  if (record.revokedAt !== undefined) lines.push(`revoked:     ${iso(record.revokedAt)}`);
  if (record.replacedBy)
    lines.push(`replaced by: ${record.replacedBy}, works until ${iso(record.graceUntil)}`);
  if (record.replaces) lines.push(`replaces:    ${record.replaces}`);
  lines.push(
    `last used:   ${record.lastUsedAt === undefined ? "never" : `${iso(record.lastUsedAt)} from ${record.lastSource ?? "?"}`}`,
  );
  lines.push("", ...capabilities(record, scopes, state));
  return lines;
}

function capabilities(record: TokenRecord, scopes: ScopeIndex, state: string): string[] {
  if (state !== "active") return [`It can touch nothing: the token is ${state}.`];
  const entry = scopes.get(record.scope);
  if (!entry) return [`It can touch nothing: scope ${record.scope} does not exist.`];
  if (!entry.ready) return [`It can touch nothing: scope ${record.scope} is not ready.`];
  const scope = entry.scope;
  return [
    `It can, in namespace ${scope.namespace} only${scope.mode === "DryRun" ? " (scope in DryRun: denials are only reported)" : ""}:`,
    ...scope.summary.map((s) => `  - ${resolveLabelTemplates(s, record.labels)}`),
    "It cannot: reach any other namespace, any route not listed above, or work in another environment.",
  ];
}
