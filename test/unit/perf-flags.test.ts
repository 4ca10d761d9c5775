// The serve flags of the token cache and of --workers: defaults, and the clear error for bad input.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { serveConfig, UsageError } from "../../src/config.ts";
import { cpuLimitFromCpuMax, usableCpus } from "../../src/cpus.ts";
import { workerExecArgv } from "../../src/cluster.ts";

const REDIS = ["--redis-url=redis://127.0.0.1:6379"];

describe("cache and workers flags", () => {
  it("defaults: a 2 s cache, 500 ms for unknown ids, 100k entries, 64 MiB", () => {
    assert.deepEqual(serveConfig(REDIS, {}).cache, {
      ttlMs: 2000,
      negativeTtlMs: 500,
      maxEntries: 100_000,
      maxBytes: 64 * 1024 * 1024,
    });
  });

  it("takes every flag, also from TOKENSCOPE_* variables", () => {
    const config = serveConfig(
      [...REDIS, "--cache-ttl=5s", "--cache-max-entries=1000", "--workers=3"],
      { TOKENSCOPE_CACHE_NEGATIVE_TTL: "1s", TOKENSCOPE_CACHE_MAX_BYTES: "512Ki" },
    );
    assert.deepEqual(config.cache, {
      ttlMs: 5000,
      negativeTtlMs: 1000,
      maxEntries: 1000,
      maxBytes: 512 * 1024,
    });
    assert.equal(config.workers, 3);
  });

  it("runs one worker per CPU with Redis and one process on the embedded store", () => {
    assert.equal(serveConfig(REDIS, {}).workers, usableCpus());
    assert.equal(serveConfig([], {}).workers, 1);
  });

  it("--cache-ttl=0 turns the cache off (negative entries with it)", () => {
    const config = serveConfig([...REDIS, "--cache-ttl=0s", "--cache-negative-ttl=0s"], {});
    assert.equal(config.cache.ttlMs, 0);
  });

  const cpuMax: [string, number | undefined][] = [
    ["max 100000\n", undefined],
    ["200000 100000\n", 2],
    ["150000 100000", 1.5],
    ["50000 100000", 0.5],
    ["", undefined],
    ["garbage", undefined],
  ];
  for (const [text, cpus] of cpuMax) {
    it(`reads the cgroup v2 cpu.max ${JSON.stringify(text)} as ${String(cpus)} CPUs`, () => {
      assert.equal(cpuLimitFromCpuMax(text), cpus);
    });
  }

  const bad: [string, RegExp][] = [
    ["--cache-ttl=2m", /--cache-ttl: at most 1m/],
    ["--cache-ttl=soon", /--cache-ttl: "soon" is not a duration/],
    ["--cache-negative-ttl=3s", /must not be longer than --cache-ttl/],
    ["--cache-max-entries=0", /--cache-max-entries: "0" must be a whole number/],
    ["--cache-max-entries=1e5", /--cache-max-entries: "1e5" must be a whole number/],
    ["--cache-max-bytes=64MB", /--cache-max-bytes: "64MB" is not a size/],
    ["--cache-max-bytes=12", /at least 1Ki/],
    ["--workers=0", /--workers: "0" must be a whole number from 1 to 256/],
    ["--workers=many", /--workers: "many"/],
  ];
  for (const [flag, message] of bad) {
    it(`rejects ${flag} with one clear line`, () => {
      assert.throws(
        () => serveConfig([...REDIS, flag], {}),
        (err: unknown) => {
          assert.ok(err instanceof UsageError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});

describe("worker V8 flags", () => {
  const rows: [string, string[], string, string[]][] = [
    ["a 32 MB young generation by default", [], "", ["--max-semi-space-size=16"]],
    ["the operator's semi-space in NODE_OPTIONS wins", [], "--max-semi-space-size=64", []],
    [
      "the operator's node flags are kept and win",
      ["--max-semi-space-size=4", "--enable-source-maps"],
      "",
      ["--max-semi-space-size=4", "--enable-source-maps"],
    ],
    ["a whole-heap size leaves the split to V8", [], "--max-heap-size=300", []],
    ["V8's underscore spelling counts too", [], "--max_semi_space_size=64", []],
    [
      "an underscore-spelled node flag is kept and wins",
      ["--max_semi_space_size=64"],
      "",
      ["--max_semi_space_size=64"],
    ],
  ];
  for (const [name, execArgv, nodeOptions, want] of rows) {
    it(name, () => {
      assert.deepEqual(workerExecArgv(execArgv, nodeOptions), want);
    });
  }

  it("reads NODE_OPTIONS into the config", () => {
    assert.equal(
      serveConfig(REDIS, { NODE_OPTIONS: "--max-old-space-size=256" }).nodeOptions,
      "--max-old-space-size=256",
    );
  });
});
