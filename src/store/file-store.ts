import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { recordEndsAt, revoked, type TokenRecord } from "../domain/token-record.ts";
import { matchesFilter, toTokenRecord } from "./record-json.ts";
import { createLocalRateLimiter } from "./local-rate-limiter.ts";
import { StoreConflictError, StoreUnavailableError, type TokenStore } from "./token-store.ts";
import { fileAuditJournal } from "./file-audit.ts";

// The embedded store for a laptop: one JSON file shared by `serve` and the CLI. Each process keeps
// the records in memory for reads; writes go through a lock file so processes never interleave.

export interface FileStoreOptions {
  readonly dir: string;
  readonly retentionMs: number;
  readonly clock?: () => number;
  /** How stale a read may be: another process's write is noticed within this many ms. */
  readonly reloadIntervalMs?: number;
  /** Lifecycle events kept in audit.jsonl and its one rotated predecessor. */
  readonly auditMaxEvents?: number;
}

type Records = Map<string, TokenRecord>;

interface FileState {
  readonly records: Records;
  /** ino/size/mtime/ctime of the content read; undefined when there is no file yet. */
  readonly identity: string | undefined;
}

const LOCK_WAIT_MS = 2000;
const STALE_LOCK_MS = 10_000;

function errorCode(err: unknown): unknown {
  return err instanceof Error && "code" in err ? err.code : undefined;
}

/** Nanosecond times and the inode: rename-on-write gives a new inode, so every write shows. */
async function identityOf(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    if (errorCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

function parseTokensFile(text: string): Records {
  const data: unknown = JSON.parse(text);
  if (typeof data !== "object" || data === null || !("version" in data) || data.version !== 1) {
    throw new Error("tokens file is not version 1");
  }
  const tokens = "tokens" in data ? data.tokens : undefined;
  if (typeof tokens !== "object" || tokens === null || Array.isArray(tokens)) {
    throw new Error("tokens file has no tokens object");
  }
  const records: Records = new Map();
  for (const [id, value] of Object.entries(tokens)) {
    const record = toTokenRecord(value);
    if (record.id !== id) throw new Error(`tokens file: record under ${id} has id ${record.id}`);
    records.set(id, record);
  }
  return records;
}

async function readState(path: string): Promise<FileState> {
  // Identity is taken from the same open file that is read, so it matches the content.
  let handle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    if (errorCode(err) === "ENOENT") return { records: new Map(), identity: undefined };
    throw err;
  }
  try {
    const s = await handle.stat({ bigint: true });
    const records = parseTokensFile(await handle.readFile("utf8"));
    return { records, identity: `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` };
  } finally {
    await handle.close();
  }
}

async function writeAtomically(dir: string, path: string, records: Records): Promise<void> {
  const body = JSON.stringify({ version: 1, tokens: Object.fromEntries(records) }, null, 2);
  const temp = join(dir, `.tokens.${process.pid}.${randomUUID()}.tmp`);
  try {
    const handle = await open(temp, "wx", 0o600);
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
}

/** Makes the rename itself durable; some platforms cannot fsync a directory, which is fine. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort only.
  }
}

async function withLockFile<T>(lockPath: string, work: () => Promise<T>): Promise<T> {
  const owner = `${process.pid} ${randomUUID()}\n`;
  const giveUpAt = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      await handle.writeFile(owner).finally(() => handle.close());
      break;
    } catch (err) {
      if (errorCode(err) !== "EEXIST") throw err;
    }
    // A crashed CLI leaves its lock behind; nothing legitimate holds it for 10 s.
    const held = await stat(lockPath).catch(() => undefined);
    if (held !== undefined && Date.now() - held.mtimeMs > STALE_LOCK_MS) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() >= giveUpAt) throw new Error(`${lockPath} is held by another process`);
    await sleep(5 + Math.random() * 20);
  }
  try {
    return await work();
  } finally {
    // Only remove our own lock: if ours was broken as stale, another process owns the file now.
    const current = await readFile(lockPath, "utf8").catch(() => undefined);
    if (current === owner) await rm(lockPath, { force: true });
  }
}

export async function createFileStore(opts: FileStoreOptions): Promise<TokenStore> {
  const clock = opts.clock ?? Date.now;
  const reloadIntervalMs = opts.reloadIntervalMs ?? 200;
  const path = join(opts.dir, "tokens.json");
  const lockPath = join(opts.dir, "tokens.lock");
  const retained = (r: TokenRecord): boolean => recordEndsAt(r) + opts.retentionMs > clock();

  let records: Records = new Map();
  let identity: string | undefined;
  // Set while the file cannot be read: every operation then fails closed instead of serving
  // an empty (or stale) store that would make revoked tokens look unknown or valid.
  let failure: unknown = new Error("not loaded yet");
  let checkedAt = -Infinity;
  let reloading: Promise<void> | undefined;
  let writes: Promise<unknown> = Promise.resolve();

  function adopt(state: FileState): void {
    records = state.records;
    identity = state.identity;
    failure = undefined;
  }

  async function reload(): Promise<void> {
    checkedAt = performance.now();
    try {
      const current = await identityOf(path);
      if (failure === undefined && current === identity) return;
      adopt(await readState(path));
    } catch (err) {
      failure = err;
    }
  }

  async function fresh(op: string, force = false): Promise<void> {
    if (force || performance.now() - checkedAt >= reloadIntervalMs) {
      reloading ??= reload().finally(() => {
        reloading = undefined;
      });
      await reloading;
    }
    if (failure !== undefined) throw new StoreUnavailableError(op, { cause: failure });
  }

  /** Read-modify-write under the lock, on the file as it is now, never on the memory copy. */
  function mutate<T>(op: string, change: (current: Records) => T): Promise<T> {
    const result = writes.then(() =>
      withLockFile(lockPath, async () => {
        const state = await readState(path);
        const out = change(state.records);
        for (const [id, record] of state.records) if (!retained(record)) state.records.delete(id);
        await writeAtomically(opts.dir, path, state.records);
        adopt({ records: state.records, identity: await identityOf(path) });
        return out;
      }),
    );
    writes = result.catch(() => undefined);
    return result.catch((err: unknown) => {
      if (err instanceof StoreConflictError) throw err;
      throw new StoreUnavailableError(op, { cause: err });
    });
  }

  const live = (all: Records, id: string): TokenRecord | undefined => {
    const record = all.get(id);
    return record !== undefined && retained(record) ? record : undefined;
  };

  const journal = fileAuditJournal({
    dir: opts.dir,
    maxEvents: opts.auditMaxEvents ?? 100_000,
    withLock: (work) => withLockFile(join(opts.dir, "audit.lock"), work),
  });
  const unavailable =
    (op: string) =>
    (err: unknown): never => {
      throw new StoreUnavailableError(op, { cause: err });
    };

  try {
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new StoreUnavailableError("open", { cause: err });
  }
  await reload();
  const rates = createLocalRateLimiter(clock);

  return {
    kind: "file",

    async get(id) {
      await fresh("get");
      return live(records, id);
    },

    create: (record) =>
      mutate("create", (all) => {
        if (live(all, record.id)) throw new StoreConflictError(`token ${record.id} already exists`);
        all.set(record.id, record);
      }),

    rotate: (previous, next) =>
      mutate("rotate", (all) => {
        const current = live(all, previous.id);
        const refuse = (why: string): never => {
          throw new StoreConflictError(`cannot rotate token ${previous.id}: it ${why}`);
        };
        if (current === undefined) refuse("does not exist");
        if (current?.revokedAt !== undefined) refuse("is revoked");
        if (current?.replacedBy !== undefined) refuse("was already rotated");
        if (live(all, next.id)) throw new StoreConflictError(`token ${next.id} already exists`);
        all.set(previous.id, previous);
        all.set(next.id, next);
      }),

    revoke: (id, at) =>
      mutate("revoke", (all) => {
        const current = live(all, id);
        if (current === undefined) throw new StoreConflictError(`no token with id ${id}`);
        const updated = revoked(current, at);
        all.set(id, updated);
        return updated;
      }),

    async forEachRecord(visit) {
      await fresh("list");
      for (const r of records.values()) if (retained(r)) visit(r);
    },

    async list(filter) {
      await fresh("list");
      return [...records.values()]
        .filter((r) => retained(r) && matchesFilter(r, filter))
        .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    },

    recordUsage: (usages) =>
      mutate("usage", (all) => {
        for (const use of usages) {
          const current = live(all, use.id);
          if (current === undefined) continue;
          if (current.lastUsedAt !== undefined && current.lastUsedAt >= use.at) continue;
          all.set(use.id, { ...current, lastUsedAt: use.at, lastSource: use.source });
        }
      }),

    appendEvent: (event) => journal.append(event).catch(unavailable("audit")),

    events: (filter) => journal.read(filter).catch(unavailable("audit")),

    // The embedded store serves one process: its rate limits are that process's, in memory.
    consumeRate: (key, limit) => Promise.resolve(rates.consume(key, limit)),

    ping: () => fresh("ping", true),

    async close() {
      await writes;
    },
  };
}
