// `tokenscope audit [--token ID] [--scope NS/NAME] [--since 1h] [-o json]`: the lifecycle events
// (issue, rotate, revoke) kept in the token store's audit journal, oldest first.
import { jsonOutput, openCliStore } from "./cli-store.ts";
import { STORE_FLAGS, UsageError, durationFlag, parseFlags, stringFlag } from "../config.ts";
import { isValidTokenId } from "../domain/token.ts";
import type { LifecycleEvent } from "../store/token-store.ts";

const AUDIT_FLAGS = {
  ...STORE_FLAGS,
  token: { type: "string" },
  scope: { type: "string" },
  since: { type: "string" },
  output: { type: "string", short: "o" },
} as const;

export const AUDIT_USAGE = "audit [--token ID] [--scope NS/NAME] [--since 1h] [-o json]";

export async function runAudit(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseFlags(argv, AUDIT_FLAGS, env);
  if (positionals.length > 0) throw new UsageError(`usage: tokenscope ${AUDIT_USAGE}`);
  const json = jsonOutput(values);
  const tokenId = stringFlag(values, "token");
  if (tokenId !== undefined && !isValidTokenId(tokenId)) {
    throw new UsageError(`--token: "${tokenId}" is not a token id (12 base62 characters)`);
  }
  const scope = stringFlag(values, "scope");
  if (scope !== undefined && !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(scope)) {
    throw new UsageError(`--scope: "${scope}" is not NAMESPACE/NAME`);
  }
  const now = Date.now();
  const since =
    stringFlag(values, "since") === undefined
      ? undefined
      : now - durationFlag(values, "since", "0");
  const { backends } = await openCliStore(values, env);
  try {
    const events = await backends.store.events({
      ...(tokenId === undefined ? {} : { tokenId }),
      ...(scope === undefined ? {} : { scope }),
      ...(since === undefined ? {} : { since }),
    });
    process.stdout.write(
      json ? JSON.stringify(events.map(eventJson), null, 2) + "\n" : eventTable(events) + "\n",
    );
    return 0;
  } finally {
    await backends.close();
  }
}

function eventJson(e: LifecycleEvent): Record<string, unknown> {
  return { ...e, time: new Date(e.time).toISOString() };
}

function eventTable(events: readonly LifecycleEvent[]): string {
  if (events.length === 0) return "No lifecycle events.";
  const rows = [["TIME", "EVENT", "TOKEN", "SCOPE", "OWNER", "BY", "REPLACES"]];
  for (const e of events) {
    rows.push([
      new Date(e.time).toISOString(),
      e.event,
      e.token_id,
      e.scope,
      e.owner,
      e.by,
      e.replaces ?? "",
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
