import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { recordEndsAt, rotatedOut, type TokenRecord } from "../../src/domain/token-record.ts";
import { createFileStore } from "../../src/store/file-store.ts";
import { createRedisStore } from "../../src/store/redis-store.ts";
import {
  StoreConflictError,
  StoreUnavailableError,
  type TokenStore,
} from "../../src/store/token-store.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { startCluster, startSentinel } from "../harness/redis-topologies.ts";

const HOUR = 3_600_000;

/** One store backend as the contract sees it: its notion of now, and a way to let time pass. */
interface StoreEnv {
  now(): number;
  elapse(ms: number): Promise<void>;
  open(opts?: { retentionMs?: number; auditMaxEvents?: number }): Promise<TokenStore>;
  cleanup(): Promise<void>;
}

const newId = (): string => randomUUID().replaceAll("-", "").slice(0, 12);

function aRecord(now: number, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: newId(),
    hash: "ab".repeat(32),
    scope: "payments/ci",
    owner: "alice",
    environment: "prod",
    labels: { team: "payments" },
    description: "CI deploys",
    createdAt: now,
    createdBy: "alice@example.com",
    notBefore: now,
    expiresAt: now + HOUR,
    ...overrides,
  };
}

async function eventually<T>(work: () => Promise<T>, timeoutMs: number): Promise<T> {
  const giveUpAt = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await work();
    } catch (err) {
      if (performance.now() > giveUpAt) throw err;
      await sleep(10);
    }
  }
}

async function elapsedUntilRejected(work: () => Promise<unknown>): Promise<[number, unknown]> {
  const start = performance.now();
  const error = await work().then(
    () => undefined,
    (err: unknown) => err,
  );
  return [performance.now() - start, error];
}

function tokenStoreContract(newEnv: () => Promise<StoreEnv>): void {
  let env: StoreEnv;
  let store: TokenStore;
  beforeEach(async () => {
    env = await newEnv();
    store = await env.open();
  });
  afterEach(() => env.cleanup());

  it("reads back a created record with every field intact", async () => {
    const now = env.now();
    const full = aRecord(now, {
      labels: { team: "payments", tier: "gold" },
      revokedAt: now + HOUR / 2,
      replacedBy: newId(),
      replaces: newId(),
      graceUntil: now + HOUR / 4,
      lastUsedAt: now - 1000,
      lastSource: "10.0.0.7",
    });
    await store.create(full);
    assert.deepEqual(await store.get(full.id), full);
  });

  it("refuses to create an id twice and keeps the first record", async () => {
    const first = aRecord(env.now());
    await store.create(first);
    await assert.rejects(store.create({ ...first, owner: "mallory" }), StoreConflictError);
    assert.equal((await store.get(first.id))?.owner, "alice");
  });

  it("reads an unknown id as absent", async () => {
    assert.equal(await store.get(newId()), undefined);
  });

  it("stores a rotation's new record and rotated-out old record together", async () => {
    const old = aRecord(env.now());
    await store.create(old);
    const next = aRecord(env.now(), { replaces: old.id });
    const previous = rotatedOut(old, next.id, env.now(), 60_000);
    await store.rotate(previous, next);
    assert.deepEqual(await store.get(old.id), previous);
    assert.deepEqual(await store.get(next.id), next);
  });

  it("refuses to rotate a token that was already rotated and writes nothing", async () => {
    const old = aRecord(env.now());
    await store.create(old);
    const first = aRecord(env.now());
    await store.rotate(rotatedOut(old, first.id, env.now(), 1000), first);
    const second = aRecord(env.now());
    const again = store.rotate(rotatedOut(old, second.id, env.now(), 1000), second);
    await assert.rejects(
      again,
      (err) => err instanceof StoreConflictError && /rotated/.test(err.message),
    );
    assert.equal(await store.get(second.id), undefined);
    assert.equal((await store.get(old.id))?.replacedBy, first.id);
  });

  it("refuses to rotate a revoked token", async () => {
    const old = aRecord(env.now());
    await store.create(old);
    await store.revoke(old.id, env.now());
    const next = aRecord(env.now());
    const rotation = store.rotate(rotatedOut(old, next.id, env.now(), 1000), next);
    await assert.rejects(
      rotation,
      (err) => err instanceof StoreConflictError && /revoked/.test(err.message),
    );
    assert.equal(await store.get(next.id), undefined);
  });

  it("refuses to rotate an unknown token", async () => {
    const old = aRecord(env.now());
    const next = aRecord(env.now());
    await assert.rejects(
      store.rotate(rotatedOut(old, next.id, env.now(), 1000), next),
      StoreConflictError,
    );
    assert.equal(await store.get(next.id), undefined);
  });

  it("keeps the first revokedAt when a token is revoked twice", async () => {
    const record = aRecord(env.now());
    await store.create(record);
    const at = env.now() + 10;
    assert.equal((await store.revoke(record.id, at)).revokedAt, at);
    assert.equal((await store.revoke(record.id, at + 5000)).revokedAt, at);
    assert.equal((await store.get(record.id))?.revokedAt, at);
  });

  it("refuses to revoke an unknown id", async () => {
    const id = newId();
    await assert.rejects(store.revoke(id, env.now()), {
      name: "StoreConflictError",
      message: `no token with id ${id}`,
    });
  });

  it("lists records filtered by scope and owner", async () => {
    const now = env.now();
    const a = aRecord(now, { scope: "payments/ci", owner: "alice" });
    const b = aRecord(now + 1, { scope: "payments/ci", owner: "bob" });
    const c = aRecord(now + 2, { scope: "search/nightly", owner: "alice" });
    for (const r of [a, b, c]) await store.create(r);
    const ids = async (filter?: { scope?: string; owner?: string }): Promise<string[]> =>
      (await store.list(filter)).map((r) => r.id);
    assert.deepEqual(await ids(), [a.id, b.id, c.id]);
    assert.deepEqual(await ids({ scope: "payments/ci" }), [a.id, b.id]);
    assert.deepEqual(await ids({ owner: "alice" }), [a.id, c.id]);
    assert.deepEqual(await ids({ scope: "payments/ci", owner: "bob" }), [b.id]);
  });

  it("visits every listed record once, a page at a time", async () => {
    const now = env.now();
    // More than one Redis page (500).
    for (let i = 0; i < 600; i++) await store.create(aRecord(now + i));
    const visited: string[] = [];
    await store.forEachRecord((r) => visited.push(r.id));
    const listed = (await store.list()).map((r) => r.id);
    assert.equal(visited.length, 600);
    assert.deepEqual(visited.sort(), listed.sort());
  });

  it("records a use on the record and changes nothing else", async () => {
    const t = env.now();
    const record = aRecord(t);
    await store.create(record);
    await store.recordUsage([{ id: record.id, at: t + 5, source: "10.0.0.7" }]);
    assert.deepEqual(await store.get(record.id), {
      ...record,
      lastUsedAt: t + 5,
      lastSource: "10.0.0.7",
    });
  });

  it("keeps the later use when an older one arrives", async () => {
    const t = env.now();
    const record = aRecord(t);
    await store.create(record);
    await store.recordUsage([{ id: record.id, at: t + 10, source: "10.0.0.2" }]);
    await store.recordUsage([{ id: record.id, at: t + 5, source: "10.0.0.1" }]);
    const got = await store.get(record.id);
    assert.deepEqual([got?.lastUsedAt, got?.lastSource], [t + 10, "10.0.0.2"]);
  });

  it("records uses of many tokens in one batch and never creates a record", async () => {
    const records = Array.from({ length: 5 }, (_, i) => aRecord(env.now() + i));
    for (const r of records) await store.create(r);
    const unknown = newId();
    await store.recordUsage([
      ...records.map((r, i) => ({ id: r.id, at: env.now() + 100 + i, source: `10.0.0.${i}` })),
      { id: unknown, at: env.now(), source: "10.9.9.9" },
    ]);
    for (const [i, r] of records.entries()) {
      assert.equal((await store.get(r.id))?.lastSource, `10.0.0.${i}`);
    }
    assert.equal(await store.get(unknown), undefined);
    assert.equal((await store.list()).length, records.length);
  });

  it("never undoes a revocation when recording a use", async () => {
    const t = env.now();
    const record = aRecord(t);
    await store.create(record);
    await store.revoke(record.id, t);
    await store.recordUsage([{ id: record.id, at: t + 1, source: "10.0.0.1" }]);
    assert.equal((await store.get(record.id))?.revokedAt, t);
  });

  it("keeps lifecycle events in order and filters them by token, scope and time", async () => {
    const t0 = env.now();
    const [a, b] = [newId(), newId()];
    const events = [
      {
        time: t0 - 2 * HOUR,
        event: "issue",
        token_id: a,
        scope: "payments/ci",
        owner: "alice",
        by: "alice",
      },
      {
        time: t0 - 10,
        event: "rotate",
        token_id: b,
        scope: "payments/ci",
        owner: "alice",
        by: "bob",
        replaces: a,
      },
      { time: t0, event: "revoke", token_id: b, scope: "payments/ci", owner: "alice", by: "carol" },
      {
        time: t0,
        event: "issue",
        token_id: newId(),
        scope: "search/nightly",
        owner: "dan",
        by: "dan",
      },
    ] as const;
    for (const e of events) await store.appendEvent(e);
    assert.deepEqual(await store.events(), events);
    assert.deepEqual(await store.events({ tokenId: a }), events.slice(0, 2));
    assert.deepEqual(await store.events({ tokenId: b }), events.slice(1, 3));
    assert.deepEqual(await store.events({ scope: "search/nightly" }), events.slice(3));
    assert.deepEqual(await store.events({ since: t0 - HOUR }), events.slice(1));
  });

  it("caps the audit journal, keeping the newest events", async () => {
    const cap = 100;
    const capped = await env.open({ auditMaxEvents: cap });
    const ids = Array.from({ length: 3 * cap + 50 }, () => newId());
    for (const id of ids) {
      await capped.appendEvent({
        time: env.now(),
        event: "issue",
        token_id: id,
        scope: "a/b",
        owner: "o",
        by: "o",
      });
    }
    const kept = (await capped.events()).map((e) => e.token_id);
    assert.ok(kept.length >= cap && kept.length <= 2 * cap, `kept ${kept.length} of ${ids.length}`);
    assert.deepEqual(kept, ids.slice(-kept.length), "the newest, in order");
  });

  it("allows a token's burst, then limits it and says when to retry", async () => {
    const limit = { requestsPerSecond: 5, burst: 3 };
    const key = `payments/ci:${newId()}`;
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await store.consumeRate(key, limit));
    assert.deepEqual(
      outcomes.map((o) => o.allowed),
      [true, true, true, false],
    );
    const retry = outcomes[3]?.retryAfterMs ?? 0;
    assert.ok(retry > 0 && retry <= 200, `retry after ${retry} ms`);
    await env.elapse(250);
    assert.equal((await store.consumeRate(key, limit)).allowed, true);
  });

  it("limits each token on its own", async () => {
    const limit = { requestsPerSecond: 1, burst: 1 };
    const [a, b] = [`payments/ci:${newId()}`, `payments/ci:${newId()}`];
    assert.equal((await store.consumeRate(a, limit)).allowed, true);
    assert.equal((await store.consumeRate(a, limit)).allowed, false);
    assert.equal((await store.consumeRate(b, limit)).allowed, true);
  });

  it("drops a record once it is past its end plus retention", async () => {
    const short = await env.open({ retentionMs: 100 });
    const ending = aRecord(env.now(), { expiresAt: env.now() + 100 });
    const lasting = aRecord(env.now());
    await short.create(ending);
    await short.create(lasting);
    assert.deepEqual(await short.get(ending.id), ending);
    await env.elapse(300);
    assert.equal(await short.get(ending.id), undefined);
    assert.deepEqual(
      (await short.list()).map((r) => r.id),
      [lasting.id],
    );
  });
}

describe("file store", () => {
  let dir: string;
  let t: number;
  const opened: TokenStore[] = [];
  const open = async (
    extra: { retentionMs?: number; reloadIntervalMs?: number; auditMaxEvents?: number } = {},
  ) => {
    const s = await createFileStore({ dir, retentionMs: HOUR, clock: () => t, ...extra });
    opened.push(s);
    return s;
  };
  const fileEnv = async (): Promise<StoreEnv> => {
    dir = join(await mkdtemp(join(tmpdir(), "tokenscope-file-")), "store");
    t = Date.now();
    return {
      now: () => t,
      elapse: (ms) => Promise.resolve(void (t += ms)),
      open,
      cleanup: async () => {
        await Promise.all(opened.splice(0).map((s) => s.close()));
        await rm(join(dir, ".."), { recursive: true, force: true });
      },
    };
  };

  describe("contract", () => {
    tokenStoreContract(fileEnv);
  });

  describe("sharing and durability", () => {
    let env: StoreEnv;
    beforeEach(async () => {
      env = await fileEnv();
    });
    afterEach(() => env.cleanup());

    it("shows a revocation made by another instance within the reload interval", async () => {
      const cli = await open();
      const server = await open({ reloadIntervalMs: 50 });
      const record = aRecord(t);
      await cli.create(record);
      await eventually(async () => {
        assert.ok(await server.get(record.id));
      }, 200);
      await cli.revoke(record.id, t);
      const start = performance.now();
      await eventually(async () => {
        assert.equal((await server.get(record.id))?.revokedAt, t);
      }, 500);
      assert.ok(performance.now() - start < 50 + 50, "revocation seen within the interval");
    });

    it("reads records back after a restart", async () => {
      const record = aRecord(t);
      await (await open()).create(record);
      assert.deepEqual(await (await open()).get(record.id), record);
    });

    it("keeps every record when two instances write at once", async () => {
      const [one, two] = [await open(), await open()];
      const records = Array.from({ length: 30 }, (_, i) => aRecord(t + i));
      await Promise.all(records.map((r, i) => (i % 2 === 0 ? one : two).create(r)));
      assert.equal((await (await open()).list()).length, 30);
    });

    it("keeps the directory and file private to the user", async () => {
      await (await open()).create(aRecord(t));
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.equal((await stat(join(dir, "tokens.json"))).mode & 0o777, 0o600);
    });

    it("removes records past retention from the file on the next write", async () => {
      const store = await open({ retentionMs: 100 });
      const old = aRecord(t, { expiresAt: t + 100 });
      await store.create(old);
      t += 300;
      await store.create(aRecord(t));
      assert.ok(!(await readFile(join(dir, "tokens.json"), "utf8")).includes(old.id));
    });

    it("fails closed on a corrupt file and leaves it untouched", async () => {
      await (await open()).create(aRecord(t));
      await writeFile(join(dir, "tokens.json"), "{not json");
      const store = await open();
      const record = aRecord(t);
      const ops = [
        store.get(record.id),
        store.list(),
        store.ping(),
        store.create(record),
        store.revoke(record.id, t),
        store.rotate(rotatedOut(record, newId(), t, 1), aRecord(t)),
      ];
      for (const op of ops) await assert.rejects(op, StoreUnavailableError);
      assert.equal(await readFile(join(dir, "tokens.json"), "utf8"), "{not json");
    });

    it("fails closed when the file is corrupted while serving", async () => {
      const store = await open({ reloadIntervalMs: 20 });
      const record = aRecord(t);
      await store.create(record);
      await writeFile(join(dir, "tokens.json"), JSON.stringify({ version: 1, tokens: { x: 1 } }));
      await sleep(30);
      await assert.rejects(store.get(record.id), StoreUnavailableError);
    });

    it("breaks a lock left behind by a crashed process", async () => {
      const store = await open();
      await writeFile(join(dir, "tokens.lock"), "12345\n");
      const longAgo = new Date(Date.now() - 20_000);
      await utimes(join(dir, "tokens.lock"), longAgo, longAgo);
      await store.create(aRecord(t));
      assert.equal((await store.list()).length, 1);
    });

    it("reports unavailable when another process holds the lock too long", async () => {
      const store = await open();
      await writeFile(join(dir, "tokens.lock"), "12345\n");
      const [ms, error] = await elapsedUntilRejected(() => store.create(aRecord(t)));
      assert.ok(error instanceof StoreUnavailableError);
      assert.ok(ms >= 1900 && ms < 3000, `gave up after ${ms} ms`);
    });
  });
});

/** The Redis stores one suite opens, closed together; none queues, so each waits to connect. */
function redisStores(
  url: () => string,
  opts: { onError?: (op: string) => void; pingWithinMs: number },
) {
  const opened: TokenStore[] = [];
  return {
    open: async (
      prefix: string,
      retentionMs = HOUR,
      deadlineMs = 1000,
      auditMaxEvents?: number,
    ) => {
      const s = createRedisStore({
        url: url(),
        prefix,
        retentionMs,
        deadlineMs,
        onError: opts.onError,
        auditMaxEvents,
      });
      opened.push(s);
      await eventually(() => s.ping(), opts.pingWithinMs);
      return s;
    },
    closeAll: async (): Promise<void> => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    },
  };
}

describe("redis store", () => {
  let server: RedisServer;
  const errors: string[] = [];
  const { open, closeAll } = redisStores(() => server.url, {
    onError: (op) => void errors.push(op),
    pingWithinMs: 2000,
  });
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await closeAll();
    await server.stop();
  });
  afterEach(closeAll);

  describe("contract", () => {
    tokenStoreContract(() => {
      const prefix = `{tokenscope-test-${newId()}}:`;
      return Promise.resolve({
        now: () => Date.now(),
        elapse: (ms) => sleep(ms),
        open: (o) => open(prefix, o?.retentionMs, 1000, o?.auditMaxEvents),
        cleanup: closeAll,
      });
    });
  });

  it("expires a key at the record's expiry plus retention, revoked or not", async () => {
    const prefix = `{tokenscope-test-${newId()}}:`;
    const store = await open(prefix, 60_000);
    const record = aRecord(Date.now());
    await store.create(record);
    const key = `${prefix}token:${record.id}`;
    assert.equal(await server.command("PEXPIRETIME", key), String(recordEndsAt(record) + 60_000));
    await store.revoke(record.id, record.createdAt + 5);
    // A revoked record outlives its revocation: an old backup must not revive the token.
    assert.equal(await server.command("PEXPIRETIME", key), String(record.expiresAt + 60_000));
  });

  it("keeps a rate limit under the hash-tagged prefix, expiring once the debt is paid", async () => {
    const prefix = `{tokenscope-test-${newId()}}:`;
    const store = await open(prefix);
    const key = `payments/ci:${newId()}`;
    await store.consumeRate(key, { requestsPerSecond: 0.5, burst: 1 });
    const ttl = Number(await server.command("PTTL", `${prefix}rate:${key}`));
    assert.ok(ttl > 2000 && ttl <= 3000, `TTL ${ttl} ms: one interval (2 s) plus slack`);
  });

  it("counts one budget when many clients spend it at the same moment", async () => {
    const prefix = `{tokenscope-test-${newId()}}:`;
    const first = await open(prefix);
    const clients = [first, await open(prefix), await open(prefix)];
    const key = `payments/ci:${newId()}`;
    const limit = { requestsPerSecond: 0.001, burst: 25 };
    const outcomes = await Promise.all(
      Array.from({ length: 90 }, (_, i) => (clients[i % 3] ?? first).consumeRate(key, limit)),
    );
    assert.equal(outcomes.filter((o) => o.allowed).length, 25);
  });

  it("reads a corrupt record as absent and reports it", async () => {
    const prefix = `{tokenscope-test-${newId()}}:`;
    const store = await open(prefix);
    const bad = { ...aRecord(Date.now()), revokedAt: "yesterday" };
    await server.command("SET", `${prefix}token:${bad.id}`, JSON.stringify(bad));
    await server.command("SET", `${prefix}token:garbage`, "{not json");
    errors.length = 0;
    assert.equal(await store.get(bad.id), undefined);
    assert.equal(await store.get("garbage"), undefined);
    assert.deepEqual(errors, ["decode", "decode"]);
  });

  describe("when the server fails", () => {
    const deadlineMs = 100;
    let store: TokenStore;
    beforeEach(async () => {
      store = await open(`{tokenscope-test-${newId()}}:`, HOUR, deadlineMs);
    });

    it("fails every operation within the deadline while the server is down", async (t) => {
      t.after(() => server.start());
      const record = aRecord(Date.now());
      await server.kill();
      errors.length = 0;
      const ops: Record<string, () => Promise<unknown>> = {
        get: () => store.get(record.id),
        create: () => store.create(record),
        rotate: () => store.rotate(rotatedOut(record, newId(), Date.now(), 1), aRecord(Date.now())),
        revoke: () => store.revoke(record.id, Date.now()),
        list: () => store.list(),
        rate_limit: () => store.consumeRate("payments/ci:x", { requestsPerSecond: 1, burst: 1 }),
        ping: () => store.ping(),
      };
      for (const [op, work] of Object.entries(ops)) {
        const [ms, error] = await elapsedUntilRejected(work);
        assert.ok(error instanceof StoreUnavailableError, `${op} rejected as unavailable`);
        assert.equal(error.op, op);
        assert.ok(ms < deadlineMs + 50, `${op} took ${ms} ms`);
      }
      assert.ok(errors.includes("get"), "failures are reported");
    });

    it("serves again within a second of the server coming back", async () => {
      await server.kill();
      await server.start();
      const start = performance.now();
      await eventually(() => store.ping(), 1000);
      assert.ok(performance.now() - start < 1000);
      assert.equal(await store.get(newId()), undefined);
    });

    it("fails a read within the deadline while the server hangs", async (t) => {
      await server.kill("SIGSTOP");
      t.after(() => server.kill("SIGCONT"));
      const [ms, error] = await elapsedUntilRejected(() => store.get(newId()));
      assert.ok(error instanceof StoreUnavailableError);
      assert.ok(ms < deadlineMs + 50, `get took ${ms} ms`);
      await server.kill("SIGCONT");
      await eventually(() => store.ping(), 2000);
    });
  });
});

// The same contract on the replicated topologies, each of real redis-server processes.
for (const [name, start] of [
  ["Redis Cluster (3 masters, 3 replicas)", startCluster],
  ["Redis Sentinel (1 master, 1 replica, 3 sentinels)", startSentinel],
] as const) {
  describe(`redis store on ${name}`, () => {
    let setup: { url: string; stop(): Promise<void> };
    const { open, closeAll } = redisStores(() => setup.url, { pingWithinMs: 10_000 });
    before(async () => {
      setup = await start();
    });
    after(async () => {
      await closeAll();
      await setup.stop();
    });

    describe("contract", () => {
      tokenStoreContract(() => {
        const prefix = `{tokenscope-test-${newId()}}:`;
        return Promise.resolve({
          now: () => Date.now(),
          elapse: (ms) => sleep(ms),
          open: (o) => open(prefix, o?.retentionMs, 1000, o?.auditMaxEvents),
          cleanup: closeAll,
        });
      });
    });

    it("a revocation is confirmed by a replica (WAIT) before it is reported done", async () => {
      const store = await open(`{tokenscope-test-${newId()}}:`);
      const record = aRecord(Date.now());
      await store.create(record);
      const revokedRecord = await store.revoke(record.id, Date.now());
      assert.ok(revokedRecord.revokedAt !== undefined);
      assert.ok((await store.get(record.id))?.revokedAt !== undefined);
    });
  });
}
