// `tokenscope token issue|rotate|revoke|list|inspect` — thin: parse flags, call the token service, print.
import { jsonOutput, openCliStore } from "./cli-store.ts";
import { userInfo } from "node:os";
import {
  STORE_FLAGS,
  UsageError,
  durationFlag,
  parseFlags,
  stringFlag,
  type Values,
} from "../config.ts";
import { tokenServiceFor, type TokenService } from "../tokens/token-service.ts";
import type { ScopeIndex } from "../scopes/scope-index.ts";
import type { TokenStore } from "../store/token-store.ts";
import { describeRecord, printRecordTable, recordJson } from "./token-output.ts";
import { exportCmd, importCmd } from "./token-transfer.ts";

const TOKEN_FLAGS = {
  ...STORE_FLAGS,
  scope: { type: "string" },
  owner: { type: "string" },
  ttl: { type: "string" },
  label: { type: "string", multiple: true },
  description: { type: "string" },
  grace: { type: "string" },
  output: { type: "string", short: "o" },
} as const;

export interface Ctx {
  readonly service: TokenService;
  readonly store: TokenStore;
  readonly scopes: ScopeIndex;
  readonly json: boolean;
  readonly values: Values;
  readonly args: string[];
  /** Read when printing, after the operation: a record made just now is not in the future. */
  readonly clock: () => number;
  readonly by: string;
  readonly hmacKey: Uint8Array;
  readonly environment: string;
  readonly retentionMs: number;
}

const SUBCOMMANDS: Readonly<Record<string, (ctx: Ctx) => Promise<void>>> = {
  issue: issueCmd,
  rotate: rotateCmd,
  revoke: revokeCmd,
  list: listCmd,
  inspect: inspectCmd,
  export: exportCmd,
  import: importCmd,
};

export async function runToken(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run) throw new UsageError(`token: expected one of ${Object.keys(SUBCOMMANDS).join(", ")}`);
  const { values, positionals } = parseFlags(rest, TOKEN_FLAGS, env);
  const json = jsonOutput(values);
  const { config, logger, backends } = await openCliStore(values, env);
  try {
    const service = tokenServiceFor(backends, config.environment, logger);
    await run({
      service,
      store: backends.store,
      scopes: backends.scopes,
      json,
      values,
      args: positionals,
      clock: Date.now,
      by: userInfo().username,
      hmacKey: backends.hmacKey,
      environment: config.environment,
      retentionMs: config.retentionMs,
    });
    return 0;
  } finally {
    await backends.close();
  }
}

function oneId(ctx: Ctx, usage: string): string {
  const [id, ...extra] = ctx.args;
  if (id === undefined || extra.length > 0)
    throw new UsageError(`usage: tokenscope token ${usage}`);
  return id;
}

function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}

function parseLabels(raw: unknown): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of Array.isArray(raw) ? (raw as string[]) : []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`--label: "${item}" is not KEY=VALUE`);
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return labels;
}

async function issueCmd(ctx: Ctx): Promise<void> {
  const scope = stringFlag(ctx.values, "scope");
  const owner = stringFlag(ctx.values, "owner");
  if (!scope || !owner || ctx.args.length > 0) {
    throw new UsageError(
      "usage: tokenscope token issue --scope NS/NAME --owner WHO [--ttl 24h] [--label k=v]",
    );
  }
  const ttl = stringFlag(ctx.values, "ttl");
  const { token, record } = await ctx.service.issue({
    scope,
    owner,
    ttlMs: ttl === undefined ? undefined : durationFlag(ctx.values, "ttl", ttl),
    labels: parseLabels(ctx.values.label),
    description: stringFlag(ctx.values, "description"),
    createdBy: ctx.by,
  });
  if (ctx.json) {
    print(JSON.stringify({ token, record: recordJson(record, ctx.clock()) }, null, 2));
    return;
  }
  print(
    `token: ${token}\n\nThis is the only time the token is shown. Store it in a secret manager now.`,
  );
  print(describeRecord(record, ctx.scopes, ctx.clock()).join("\n"));
}

async function rotateCmd(ctx: Ctx): Promise<void> {
  const id = oneId(ctx, "rotate ID [--grace 1h]");
  const grace = stringFlag(ctx.values, "grace");
  const graceMs = grace === undefined ? undefined : durationFlag(ctx.values, "grace", grace);
  const { issued, old } = await ctx.service.rotate(id, { graceMs, by: ctx.by });
  if (ctx.json) {
    print(
      JSON.stringify(
        {
          token: issued.token,
          record: recordJson(issued.record, ctx.clock()),
          replaced: recordJson(old, ctx.clock()),
        },
        null,
        2,
      ),
    );
    return;
  }
  print(`token: ${issued.token}\n\nThis is the only time the token is shown.`);
  print(
    `${old.id} keeps working until ${new Date(old.graceUntil ?? old.expiresAt).toISOString()}, then only ${issued.record.id} does.`,
  );
}

async function revokeCmd(ctx: Ctx): Promise<void> {
  const record = await ctx.service.revoke(oneId(ctx, "revoke ID"), ctx.by);
  if (ctx.json) {
    print(JSON.stringify(recordJson(record, ctx.clock()), null, 2));
    return;
  }
  print(
    `revoked ${record.id} (scope ${record.scope}, owner ${record.owner}) at ${new Date(record.revokedAt ?? ctx.clock()).toISOString()}`,
  );
}

async function listCmd(ctx: Ctx): Promise<void> {
  if (ctx.args.length > 0)
    throw new UsageError("usage: tokenscope token list [--scope NS/NAME] [--owner WHO]");
  const scope = stringFlag(ctx.values, "scope");
  const owner = stringFlag(ctx.values, "owner");
  const records = await ctx.store.list({
    ...(scope ? { scope } : {}),
    ...(owner ? { owner } : {}),
  });
  records.sort((a, b) => a.createdAt - b.createdAt);
  if (ctx.json) {
    print(
      JSON.stringify(
        records.map((r) => recordJson(r, ctx.clock())),
        null,
        2,
      ),
    );
    return;
  }
  print(printRecordTable(records, ctx.clock()));
}

async function inspectCmd(ctx: Ctx): Promise<void> {
  const record = await ctx.service.get(oneId(ctx, "inspect ID"));
  if (ctx.json) {
    print(JSON.stringify(recordJson(record, ctx.clock()), null, 2));
    return;
  }
  print(describeRecord(record, ctx.scopes, ctx.clock()).join("\n"));
}
