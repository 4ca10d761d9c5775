// `node test/bench/cache-ab.ts --before DIR`: the token cache's hit and decide() of this checkout
// beside another checkout's (DIR: its root, e.g. from `git archive main | tar -x -C DIR` with
// node_modules linked), in one process, alternating, so that a busy machine slows both alike.
// Records as the Redis store hands them out (JSON, sealed), the first 1000 of the bench's tokens
// (workload.ts), each side sealing them with its own code, all cached.
// Flags: --rounds N (9), --iterations N (200000 per timing).
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { benchRecordFields, benchToken } from "./workload.ts";

type Decide = typeof import("../../src/domain/decide.ts");
type Token = typeof import("../../src/domain/token.ts");
type Scope = typeof import("../../src/domain/scope.ts");
type ScopeTypes = typeof import("../../src/domain/scope-types.ts");
type CachedStore = typeof import("../../src/store/cached-store.ts");
type RecordJson = typeof import("../../src/store/record-json.ts");
type TokenStore = import("../../src/store/token-store.ts").TokenStore;
type DecisionInput = import("../../src/domain/decide.ts").DecisionInput;

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    rounds: { type: "string", default: "9" },
    iterations: { type: "string", default: "200000" },
  },
});
if (values.before === undefined) throw new Error("usage: cache-ab.ts --before DIR");
const ROUNDS = Number(values.rounds);
const ITER = Number(values.iterations);
const TOKENS = 1000;

async function side(root: string) {
  const src = resolve(root, "src");
  const { decide } = (await import(`${src}/domain/decide.ts`)) as Decide;
  const { hashSecret, sealRecord } = (await import(`${src}/domain/token.ts`)) as Token;
  const { compileTokenScope } = (await import(`${src}/domain/scope.ts`)) as Scope;
  const { DEFAULT_MAX_TTL_MS } = (await import(`${src}/domain/scope-types.ts`)) as ScopeTypes;
  const { createCachedStore } = (await import(`${src}/store/cached-store.ts`)) as CachedStore;
  const { decodeRecord, encodeRecord } = (await import(
    `${src}/store/record-json.ts`
  )) as RecordJson;
  const key = Buffer.alloc(32, 7);
  const now = Date.now();
  const tokens = Array.from({ length: TOKENS }, (_, i) => benchToken(i));
  const ids = tokens.map((t) => t.id);
  const json = new Map(
    tokens.map((t, i) => [
      t.id,
      encodeRecord(sealRecord(key, benchRecordFields(i, now, false, hashSecret(key, t)))),
    ]),
  );
  const inner = {
    kind: "redis",
    get: (id: string) => Promise.resolve(decodeRecord(json.get(id) ?? "")),
  } as Partial<TokenStore> as TokenStore;
  const feed = {
    live: true,
    onInvalidate: () => undefined,
    onLiveChange: () => undefined,
    close: () => Promise.resolve(),
  };
  const cache = createCachedStore(inner, feed, {
    ttlMs: 3_600_000,
    negativeTtlMs: 1000,
    maxEntries: 100_000,
    maxBytes: 1 << 30,
  });
  const scope = compileTokenScope(
    {
      apiVersion: "tokenscope.dev/v1alpha1",
      kind: "TokenScope",
      metadata: { name: "api", namespace: "bench", generation: 1 },
      spec: { owner: "team", rules: [{ hosts: ["h"], paths: ["/v1/*"], methods: ["GET"] }] },
    },
    { maxTTLCapMs: DEFAULT_MAX_TTL_MS },
  );
  const inputs: DecisionInput[] = [];
  for (const token of tokens) {
    const record = await cache.get(token.id);
    if (record === undefined) throw new Error(`${token.id} not found`);
    inputs.push({
      token,
      lookup: { found: true, record },
      hmacKey: key,
      now,
      scope,
      namespace: "bench",
      route: { host: "h", path: "/v1/x", method: "GET" },
      source: { address: "10.0.0.1" },
    });
  }
  if (!inputs.every((input) => decide(input).allowed)) throw new Error(`${root}: not all allowed`);
  return {
    async hit() {
      const start = performance.now();
      for (let k = 0; k < ITER; k++) await cache.get(ids[k % TOKENS] as string);
      return ((performance.now() - start) * 1000) / ITER;
    },
    decide() {
      let allowed = 0;
      const start = performance.now();
      for (let k = 0; k < ITER; k++)
        if (decide(inputs[k % TOKENS] as DecisionInput).allowed) allowed++;
      return allowed < 0 ? NaN : ((performance.now() - start) * 1000) / ITER;
    },
  };
}

const sides = [
  { name: "before", run: await side(values.before) },
  { name: "this", run: await side(resolve(import.meta.dirname, "../..")) },
];
const times = new Map<string, number[]>();
const note = (name: string, us: number) => times.set(name, [...(times.get(name) ?? []), us]);
for (let r = 0; r < ROUNDS; r++) {
  for (const { name, run } of sides) {
    note(`cache hit (await), ${name}`, await run.hit());
    note(`decide(), ${name}`, run.decide());
  }
}
process.stdout.write(`# ${ROUNDS} rounds × ${ITER} iterations, alternating; min / median µs\n`);
for (const [name, us] of [...times].sort(([a], [b]) => (a < b ? -1 : 1))) {
  const sorted = [...us].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  process.stdout.write(
    `${name.padEnd(26)} ${(sorted[0] ?? NaN).toFixed(3)} / ${median.toFixed(3)}\n`,
  );
}
