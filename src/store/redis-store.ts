import { createHash } from "node:crypto";
import { connectRedis, parseRedisUrl } from "./redis-connection.ts";
import { recordEndsAt, revoked, type TokenRecord } from "../domain/token-record.ts";
import { gcraParams } from "../domain/rate-limit.ts";
import { decodeRecord, encodeRecord, matchesFilter, RecordDecodeError } from "./record-json.ts";
import { decodeEvent, encodeEvent, matchesEvent } from "./event-json.ts";
import { invalidationChannel } from "./redis-invalidation.ts";
import { GCRA_LUA } from "./rate-limit-script.ts";
import {
  StoreConflictError,
  StoreUnavailableError,
  type LifecycleEvent,
  type TokenFilter,
  type TokenStore,
  type TokenUsage,
} from "./token-store.ts";

export interface RedisStoreOptions {
  readonly url: string;
  /**
   * Key prefix. The default's `{...}` is a Redis Cluster hash tag: only the part inside braces is
   * hashed, so every key lands in one slot and the multi-key Lua scripts below stay legal on Cluster.
   */
  readonly prefix?: string;
  /** Longest any single operation may take (list: any single page). */
  readonly deadlineMs?: number;
  /** How long a record is kept after it stops mattering (expiry, revocation, end of grace). */
  readonly retentionMs: number;
  readonly clock?: () => number;
  /** Told about every failure; records hold only hashes, so errors carry no secrets. */
  readonly onError?: (op: string, err: unknown) => void;
  /** Lifecycle events kept in the audit stream (XADD MAXLEN ~, so a little more at times). */
  readonly auditMaxEvents?: number;
  /**
   * Replicas that must confirm a revocation or rotation (Redis WAIT) before it is reported
   * done. Default: 1 with Sentinel or Cluster, 0 for a single server.
   */
  readonly minReplicas?: number;
}

interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash("sha1").update(lua).digest("hex") };
}

// PEXPIREAT is a separate call (not SET ... PXAT) so the scripts also run on Redis < 6.2.
const CREATE = script(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1`);

// The old record is checked inside Redis, so two concurrent rotations cannot both win.
const ROTATE = script(`
local current = redis.call('GET', KEYS[1])
if not current then return 'missing' end
local ok, rec = pcall(cjson.decode, current)
if not ok or type(rec) ~= 'table' then return 'corrupt' end
if rec.revokedAt ~= nil then return 'revoked' end
if rec.replacedBy ~= nil then return 'rotated' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7])
redis.call('PUBLISH', ARGV[6], ARGV[5])
return 'ok'`);

// Writes announce the ids they change on the invalidation channel (redis-invalidation.ts) from
// inside the script, so no write can happen without its announcement.

// Compare-and-set: the new value is computed by domain code in TypeScript, not re-encoded in Lua.
const SWAP = script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`);

// The same swap without the announcement, for usage times (lastUsedAt/lastSource): they change
// no decision, and announcing them would empty every replica's cache of its busiest tokens at
// every usage flush.
const SWAP_QUIET = script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1`);

// Only forget an id if its record is really gone (not re-created between SSCAN and here).
const PRUNE = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0`);

const GCRA = script(GCRA_LUA);

const ROTATE_REFUSALS: Record<string, string> = {
  missing: "does not exist",
  corrupt: "is stored corrupt",
  revoked: "is revoked",
  rotated: "was already rotated",
};

const SWAP_ATTEMPTS = 5;
const PAGE_SIZE = 500;
// Usage pages are small: each use is a read and a compare-and-set, all within one deadline.
const USAGE_PAGE_SIZE = 100;

function deadlineRace<T>(work: Promise<T>, ms: number, op: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${op} exceeded its ${ms} ms deadline`));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/** A write the primary took but too few replicas confirmed: it could be lost in a failover. */
export class ReplicationError extends StoreUnavailableError {
  constructor(op: string, confirmed: number, wanted: number, waitedMs: number) {
    super(op);
    this.message = `${op} was written to the Redis primary but confirmed by ${confirmed} of ${wanted} replicas within ${waitedMs} ms; it may not survive a failover (repeat it, or check replication)`;
  }
}

export function createRedisStore(opts: RedisStoreOptions): TokenStore {
  const prefix = opts.prefix ?? "{tokenscope}:";
  const deadlineMs = opts.deadlineMs ?? 100;
  const clock = opts.clock ?? Date.now;
  const onError = opts.onError ?? (() => undefined);
  const redis = connectRedis(opts.url, deadlineMs);
  const minReplicas = opts.minReplicas ?? (parseRedisUrl(opts.url).topology === "single" ? 0 : 1);
  // WAIT's own timeout, inside the deadline (which is also the client's commandTimeout), so an
  // unconfirmed write is reported as such rather than as a timeout.
  const replicationTimeoutMs = Math.max(1, deadlineMs - 10);
  // Lifecycle writes are operator actions of several round trips, not on a request's path: each
  // command keeps the short deadline (commandTimeout), the whole operation gets longer.
  const lifecycleDeadlineMs = Math.max(deadlineMs, 2000);
  const long = <T>(op: string, work: () => Promise<T>) => run(op, work, lifecycleDeadlineMs);
  const setKey = `${prefix}tokens`;
  const auditKey = `${prefix}audit`;
  const auditMaxEvents = opts.auditMaxEvents ?? 100_000;
  const channel = invalidationChannel(prefix);
  const key = (id: string): string => `${prefix}token:${id}`;
  const expireAt = (r: TokenRecord): string => String(recordEndsAt(r) + opts.retentionMs);
  const retained = (r: TokenRecord): boolean => recordEndsAt(r) + opts.retentionMs > clock();

  // ioredis emits 'error' on every failed reconnect; report once per outage, never crash.
  let connected = true;
  redis.on("ready", () => {
    connected = true;
  });
  redis.on("error", (err: unknown) => {
    if (connected) onError("connection", err);
    connected = false;
  });

  // Every operation is raced against its own timer: ioredis' commandTimeout does not cover
  // every path (NOSCRIPT fallback, the ready check, a write stuck behind a dead socket).
  async function run<T>(op: string, work: () => Promise<T>, ms = deadlineMs): Promise<T> {
    try {
      return await deadlineRace(work(), ms, op);
    } catch (err) {
      if (err instanceof StoreConflictError) throw err;
      onError(op, err);
      throw new StoreUnavailableError(op, { cause: err });
    }
  }

  async function evalScript(s: Script, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return redis.eval(s.lua, keys.length, ...keys, ...args);
    }
  }

  /** A corrupt record reads as absent (never as a valid token) and is reported. */
  function decode(id: string, raw: string): TokenRecord | undefined {
    try {
      const record = decodeRecord(raw);
      if (record.id !== id) throw new RecordDecodeError(`record under ${id} has id ${record.id}`);
      return record;
    } catch (err) {
      onError("decode", err);
      return undefined;
    }
  }

  async function swapRevoked(id: string, at: number): Promise<TokenRecord> {
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      const raw = await redis.get(key(id));
      if (raw === null) throw new StoreConflictError(`no token with id ${id}`);
      const current = decode(id, raw);
      if (current === undefined) throw new StoreConflictError(`token ${id} is stored corrupt`);
      if (current.revokedAt !== undefined) return current;
      const next = revoked(current, at);
      const swapped = await evalScript(
        SWAP,
        [key(id)],
        [raw, encodeRecord(next), expireAt(next), channel, id],
      );
      if (swapped === 1) return next;
    }
    throw new Error(`token ${id} kept changing during revoke`);
  }

  /**
   * Redis replicates asynchronously: a failover can lose an acknowledged write. WAIT, sent on
   * the connection that wrote and (in a pipeline with the key) to the node owning its slot,
   * holds the answer until enough replicas have it.
   */
  async function confirmReplicated(op: string, id: string): Promise<void> {
    if (minReplicas === 0) return;
    // WAIT is bounded by the short per-command deadline; asked again (it waits for the same
    // write) until the lifecycle deadline, so a busy moment is not reported as a lost write.
    const giveUpAt = Date.now() + lifecycleDeadlineMs;
    let confirmed = 0;
    let lastError: unknown;
    do {
      try {
        const replies = await deadlineRace(
          redis.pipeline().exists(key(id)).wait(minReplicas, replicationTimeoutMs).exec(),
          deadlineMs,
          `${op} replication`,
        );
        const [err, value] = replies?.[1] ?? [new Error("no reply to WAIT"), undefined];
        if (err) throw err;
        confirmed = Number(value);
        if (confirmed >= minReplicas) return;
      } catch (err) {
        lastError = err;
      }
    } while (Date.now() < giveUpAt);
    if (lastError !== undefined && confirmed === 0) {
      onError(`${op} replication`, lastError);
      throw new StoreUnavailableError(`${op} replication`, { cause: lastError });
    }
    throw new ReplicationError(op, confirmed, minReplicas, lifecycleDeadlineMs);
  }

  async function listPage(cursor: string, filter?: TokenFilter): Promise<[string, TokenRecord[]]> {
    const [next, found] = await redis.sscan(setKey, cursor, "COUNT", PAGE_SIZE);
    const ids = [...new Set(found)];
    if (ids.length === 0) return [next, []];
    const raws = await redis.mget(ids.map(key));
    const records: TokenRecord[] = [];
    const gone: Promise<unknown>[] = [];
    ids.forEach((id, i) => {
      const raw = raws[i];
      if (raw === null || raw === undefined) {
        gone.push(evalScript(PRUNE, [key(id), setKey], [id]));
        return;
      }
      const record = decode(id, raw);
      if (record !== undefined && retained(record) && matchesFilter(record, filter)) {
        records.push(record);
      }
    });
    await Promise.all(gone);
    return [next, records];
  }
  /**
   * Every retained record passing `filter`, a page at a time. Deadline per page, not per listing:
   * a listing is an operator action whose length grows with the number of tokens, while every
   * single round trip stays bounded.
   */
  async function eachRecord(
    filter: TokenFilter | undefined,
    visit: (record: TokenRecord) => void,
  ): Promise<void> {
    let cursor = "0";
    do {
      const [next, page] = await run("list", () => listPage(cursor, filter));
      page.forEach((record) => visit(record));
      cursor = next;
    } while (cursor !== "0");
  }

  /** One page of uses: read the records, then compare-and-set each newer use. */
  async function usagePage(usages: readonly TokenUsage[]): Promise<void> {
    const raws = await redis.mget(usages.map((u) => key(u.id)));
    const swaps: Promise<unknown>[] = [];
    usages.forEach((use, i) => {
      const raw = raws[i];
      if (raw === null || raw === undefined) return;
      const current = decode(use.id, raw);
      if (current === undefined || !retained(current)) return;
      if (current.lastUsedAt !== undefined && current.lastUsedAt >= use.at) return;
      const next = { ...current, lastUsedAt: use.at, lastSource: use.source };
      // A record changed meanwhile (a revoke) wins: its swap fails and the use waits for the
      // next one, rather than writing back a stale record over it.
      swaps.push(evalScript(SWAP_QUIET, [key(use.id)], [raw, encodeRecord(next), expireAt(next)]));
    });
    await Promise.all(swaps);
  }

  async function eventsPage(start: string): Promise<[string | undefined, LifecycleEvent[]]> {
    const entries = await redis.xrange(auditKey, start, "+", "COUNT", PAGE_SIZE);
    const events: LifecycleEvent[] = [];
    for (const [, fields] of entries) {
      const event = decodeEvent(fields[1] ?? "");
      if (event !== undefined) events.push(event);
    }
    const last = entries.at(-1)?.[0];
    return [entries.length < PAGE_SIZE || last === undefined ? undefined : `(${last}`, events];
  }

  return {
    kind: "redis",

    async recordUsage(usages) {
      for (let i = 0; i < usages.length; i += USAGE_PAGE_SIZE) {
        const page = usages.slice(i, i + USAGE_PAGE_SIZE);
        await run("usage", () => usagePage(page));
      }
    },

    // A lifecycle write, as create/rotate/revoke: the operator's deadline, not a request's.
    appendEvent: (event) =>
      long("audit", async () => {
        const maxLen = String(auditMaxEvents);
        await redis.xadd(auditKey, "MAXLEN", "~", maxLen, "*", "e", encodeEvent(event));
      }),

    async events(filter) {
      // Stream ids start with the server's clock; a minute of slack covers a CLI's clock skew,
      // and the event's own time decides.
      let start: string | undefined =
        filter?.since === undefined ? "-" : String(Math.max(0, filter.since - 60_000));
      const events: LifecycleEvent[] = [];
      while (start !== undefined) {
        const from: string = start;
        const [next, page] = await run("audit", () => eventsPage(from));
        events.push(...page.filter((e) => matchesEvent(e, filter)));
        start = next;
      }
      return events;
    },

    get: (id) =>
      run("get", async () => {
        const raw = await redis.get(key(id));
        const record = raw === null ? undefined : decode(id, raw);
        return record !== undefined && retained(record) ? record : undefined;
      }),

    create: (record) =>
      long("create", async () => {
        const keys = [key(record.id), setKey];
        const args = [encodeRecord(record), expireAt(record), record.id, channel];
        const created = await evalScript(CREATE, keys, args);
        if (created !== 1) throw new StoreConflictError(`token ${record.id} already exists`);
      }),

    rotate: (previous, next) =>
      long("rotate", async () => {
        const keys = [key(previous.id), key(next.id), setKey];
        const args = [
          encodeRecord(previous),
          expireAt(previous),
          encodeRecord(next),
          expireAt(next),
          next.id,
          channel,
          previous.id,
        ];
        const outcome = await evalScript(ROTATE, keys, args);
        if (outcome === "ok") return;
        if (outcome === "exists") throw new StoreConflictError(`token ${next.id} already exists`);
        const why = typeof outcome === "string" ? ROTATE_REFUSALS[outcome] : undefined;
        if (why === undefined) throw new Error(`unexpected rotate reply ${String(outcome)}`);
        throw new StoreConflictError(`cannot rotate token ${previous.id}: it ${why}`);
      }).then(() => confirmReplicated("rotate", previous.id)),

    async revoke(id, at) {
      const record = await long("revoke", () => swapRevoked(id, at));
      await confirmReplicated("revoke", id);
      return record;
    },

    forEachRecord: (visit) => eachRecord(undefined, visit),

    async list(filter) {
      const records: TokenRecord[] = [];
      await eachRecord(filter, (record) => records.push(record));
      return records.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    },

    consumeRate: (rateKey, limit) =>
      run("rate_limit", async () => {
        const { intervalMs, toleranceMs } = gcraParams(limit);
        const args = [String(intervalMs * 1000), String(toleranceMs * 1000)];
        const reply = await evalScript(GCRA, [`${prefix}rate:${rateKey}`], args);
        if (!Array.isArray(reply) || typeof reply[0] !== "number" || typeof reply[1] !== "number") {
          throw new Error(`unexpected rate limit reply ${JSON.stringify(reply)}`);
        }
        return { allowed: reply[0] === 1, retryAfterMs: reply[1] / 1000 };
      }),

    ping: () =>
      run("ping", async () => {
        await redis.ping();
      }),

    async close() {
      try {
        await deadlineRace(redis.quit(), deadlineMs, "close");
      } catch {
        // Already down or too slow: disconnect below drops the socket either way.
      } finally {
        redis.disconnect();
      }
    },
  };
}
