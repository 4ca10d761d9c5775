// --redis-url forms (README "Redis: single server, Sentinel, Cluster"), and the errors for the rest.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseRedisUrl } from "../../src/store/redis-connection.ts";
import { serveConfig, UsageError } from "../../src/config.ts";

describe("--redis-url", () => {
  const good: [string, object][] = [
    [
      "redis://127.0.0.1:6379",
      { topology: "single", nodes: [{ host: "127.0.0.1", port: 6379 }], db: 0, tls: false },
    ],
    [
      "rediss://:p%40ss@redis.example:6380/2",
      { topology: "single", password: "p@ss", db: 2, tls: true },
    ],
    ["redis://redis.example", { nodes: [{ host: "redis.example", port: 6379 }] }],
    ["redis://[::1]:7000", { nodes: [{ host: "::1", port: 7000 }] }],
    [
      "redis+sentinel://s1:26379,s2,s3:26380/mymaster",
      {
        topology: "sentinel",
        masterName: "mymaster",
        nodes: [
          { host: "s1", port: 26379 },
          { host: "s2", port: 26379 },
          { host: "s3", port: 26380 },
        ],
      },
    ],
    [
      "rediss+sentinel://:pw@s1:26379/m/3",
      { topology: "sentinel", masterName: "m", db: 3, password: "pw", tls: true },
    ],
    [
      "redis+cluster://n1:7000,n2:7001",
      {
        topology: "cluster",
        nodes: [
          { host: "n1", port: 7000 },
          { host: "n2", port: 7001 },
        ],
      },
    ],
    [
      "rediss+cluster://user:pw@n1:7000",
      { topology: "cluster", username: "user", password: "pw", tls: true },
    ],
  ];
  for (const [url, want] of good) {
    it(`reads ${url.replace(/:[^:@/]*@/, ":***@")}`, () => {
      const got = parseRedisUrl(url) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, k);
    });
  }

  const bad: [string, RegExp][] = [
    ["http://redis:6379", /expected redis:\/\//],
    ["redis://a:1,b:2", /takes one HOST:PORT/],
    ["redis+sentinel://s1:26379", /master name/],
    ["redis+cluster://n1:7000/1", /never on a cluster/],
    ["redis://host:99999", /not HOST\[:PORT\]/],
    ["redis://host:6379/db", /database number/],
  ];
  for (const [url, message] of bad) {
    it(`refuses ${url} with a clear message that never repeats the URL`, () => {
      assert.throws(
        () => parseRedisUrl(url),
        (err: Error) => message.test(err.message) && !err.message.includes(url),
      );
    });
  }

  it("refuses a password with an unencoded @ rather than taking part of it for the host", () => {
    assert.throws(
      () => parseRedisUrl("redis://:s3cr@tpass@redis.prod:6379"),
      (err: Error) => /expected redis:\/\//.test(err.message) && !err.message.includes("tpass"),
    );
  });

  it("never puts a password in an error", () => {
    assert.throws(
      () => parseRedisUrl("redis://:hunter2@a:1,b:2"),
      (err: Error) => !err.message.includes("hunter2"),
    );
  });

  it("a Cluster needs a {hash tag} in --redis-prefix; other topologies take any prefix", () => {
    const args = (url: string, prefix: string) => [
      `--redis-url=${url}`,
      `--redis-prefix=${prefix}`,
      "--hmac-key-file=/k",
    ];
    assert.throws(
      () => serveConfig(args("redis+cluster://n1:7000", "ts:"), {}),
      (err: Error) =>
        err instanceof UsageError && /needs a \{hash tag\}.*"\{ts\}:"/.test(err.message),
    );
    assert.equal(serveConfig(args("redis+cluster://n1:7000", "{ts}:"), {}).redisPrefix, "{ts}:");
    assert.equal(serveConfig(args("redis://r:6379", "ts:"), {}).redisPrefix, "ts:");
  });
});
