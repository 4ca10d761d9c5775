// `serve --scopes kubernetes` end to end: the real server watching the test Kubernetes API server
// (test/harness/kube-api.ts, HTTPS + bearer token through a kubeconfig), tokens in a real
// redis-server, decisions asked over gRPC as Envoy asks them. Convergence times are printed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildCheckRequest } from "../../src/envoy/check-request.ts";
import { checkClient, type CheckClient } from "../harness/check-client.ts";
import { counter, eventually, READ_SPEC, readyz, tokenScope } from "../harness/kube-fixtures.ts";
import { TestKubeApi } from "../harness/kube-api.ts";
import { startRedis, type RedisServer } from "../harness/redis.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";

let redis: RedisServer;
let api: TestKubeApi;
let server: TestServer;
let client: CheckClient;
let token = "";

const GET_REPORTS = {
  method: "GET",
  path: "/v1/reports/2026",
  host: "reports.prod.svc.cluster.local",
  namespace: "prod",
};

/** The decision for GET /v1/reports/2026 with the test token: "ok" or the deny reason. */
async function decision(c: CheckClient = client): Promise<string> {
  const res = await c.check(buildCheckRequest({ ...GET_REPORTS, token }));
  return res.status?.code === 0 ? "ok" : (res.status?.message ?? "?");
}

async function until(what: string, want: string, c: CheckClient = client): Promise<number> {
  const { ms } = await eventually(what, async () =>
    (await decision(c)) === want ? true : undefined,
  );
  console.log(`# converged: ${what} → ${want} in ${ms} ms`);
  return ms;
}

const listCount = () =>
  api.requests.filter((r) => r.method === "GET" && r.query.watch === undefined).length;

const restarts = (labels: Record<string, string> = {}) =>
  counter(server.httpPort, "tokenscope_kube_watch_restarts_total", labels);

function kubeArgs(kubeApi: TestKubeApi, extra: string[] = []): string[] {
  return [
    `--kubeconfig=${kubeApi.kubeconfig}`,
    "--kube-watch-timeout=2s",
    "--kube-ready-grace=1s",
    ...extra,
  ];
}

before(async () => {
  redis = await startRedis();
  api = await TestKubeApi.start();
  api.apply(tokenScope("prod", "reports-read", READ_SPEC));
  server = await startTestServer({
    redisUrl: redis.url,
    scopes: "kubernetes",
    extraArgs: kubeArgs(api),
  });
  client = checkClient(server.grpcPort);
  // Issued as `tokenscope token issue` would: the CLI lists the TokenScopes itself.
  const cli = await openServerBackends(server);
  try {
    token = (
      await cli.tokens.issue({
        scope: "prod/reports-read",
        owner: "alice",
        labels: {},
        createdBy: "test",
      })
    ).token;
  } finally {
    await cli.close();
  }
  await eventually("ready", async () =>
    (await readyz(server.httpPort)).status === 200 ? true : undefined,
  );
});

after(async () => {
  client.close();
  await server.stop();
  await api.stop();
  await redis.stop();
});

describe("TokenScopes from the Kubernetes API change decisions", () => {
  it("an update, a delete and a re-create each change the decision within seconds", async () => {
    assert.equal(await decision(), "ok");
    const times: number[] = [];
    api.apply(
      tokenScope("prod", "reports-read", {
        ...READ_SPEC,
        rules: [{ paths: ["/v1/reports/*"], methods: ["HEAD"] }],
      }),
    );
    times.push(await until("update that drops GET", "route_not_allowed"));
    api.apply(tokenScope("prod", "reports-read", READ_SPEC));
    times.push(await until("update that restores GET", "ok"));
    api.delete("prod", "reports-read");
    times.push(await until("delete", "scope_not_found"));
    api.apply(tokenScope("prod", "reports-read", READ_SPEC));
    times.push(await until("re-create", "ok"));
    console.log(`# convergence (ms): ${times.join(", ")}; max ${Math.max(...times)}`);
  });

  it("a scope that becomes invalid denies scope_not_ready until it is fixed", async () => {
    api.apply(
      tokenScope("prod", "reports-read", { ...READ_SPEC, rules: [{ paths: ["/v1/reports/*"] }] }),
    );
    await until("invalid update", "scope_not_ready");
    api.apply(tokenScope("prod", "reports-read", READ_SPEC));
    await until("fixed", "ok");
  });

  it("lists in pages (limit/continue) and asks for bookmarks on every watch", () => {
    const lists = api.requests.filter((r) => r.method === "GET" && r.query.watch === undefined);
    assert.ok(lists.length > 0);
    for (const l of lists) assert.equal(l.query.limit, "500");
    const watches = api.requests.filter((r) => r.query.watch === "1");
    assert.ok(watches.length > 0);
    for (const w of watches) {
      assert.equal(w.query.allowWatchBookmarks, "true");
      assert.match(
        w.query.resourceVersion ?? "",
        /^\d+$/,
        "every watch resumes from a resourceVersion",
      );
    }
  });
});

describe("the watch survives the API server's faults", () => {
  it("a watch cut 10 times resumes from its resourceVersion without relisting and converges", async () => {
    const before = await restarts({ reason: "error" });
    const listsBefore = listCount();
    for (let i = 0; i < 10; i++) {
      await eventually("an open watch", () => (api.openWatches > 0 ? true : undefined));
      api.cutWatches();
      const methods = i % 2 === 0 ? ["GET"] : ["HEAD"];
      api.apply(
        tokenScope("prod", "reports-read", {
          ...READ_SPEC,
          rules: [{ paths: ["/v1/reports/*"], methods }],
        }),
      );
    }
    // The last change (i = 9) dropped GET.
    await until("10 cuts", "route_not_allowed");
    await eventually("restarts counted", async () =>
      (await restarts({ reason: "error" })) - before >= 10 ? true : undefined,
    );
    const lists = listCount() - listsBefore;
    console.log(
      `# 10 cuts: restarts{reason="error"} +${(await restarts({ reason: "error" })) - before}, relists ${lists}`,
    );
    assert.equal(lists, 0, "a cut watch resumes from the last resourceVersion; no relist needed");
    api.apply(tokenScope("prod", "reports-read", READ_SPEC));
    await until("after 10 cuts, restored", "ok");
  });

  for (const [how, goneAsHttpStatus] of [
    ["an ERROR event with a 410 Status", false],
    ["a plain HTTP 410 response", true],
  ] as const) {
    it(`a too-old resourceVersion (${how}) relists and converges`, async () => {
      api.goneAsHttpStatus = goneAsHttpStatus;
      const expired = await restarts({ reason: "expired" });
      const listsBefore = listCount();
      // Cut, change, compact: the watch comes back with a resourceVersion the server forgot.
      api.cutWatches();
      api.delete("prod", "reports-read");
      api.state.compact();
      await until(`410 (${how})`, "scope_not_found");
      assert.ok((await restarts({ reason: "expired" })) > expired, "counted as expired");
      const lists = listCount() - listsBefore;
      assert.ok(lists >= 1, "relisted");
      api.apply(tokenScope("prod", "reports-read", READ_SPEC));
      await until("re-create after 410", "ok");
      api.goneAsHttpStatus = false;
    });
  }

  it("a watch gone silent (open, sending nothing) is caught by the watchdog and converges", async () => {
    const before = await restarts({ reason: "watchdog" });
    api.goSilent();
    try {
      api.delete("prod", "reports-read");
      await until("silent watch, delete", "scope_not_found");
      assert.ok((await restarts({ reason: "watchdog" })) > before, "the watchdog relisted");
    } finally {
      api.speak();
    }
    api.apply(tokenScope("prod", "reports-read", READ_SPEC));
    await until("after silence", "ok");
  });

  it("lists failing with 500 and slow lists are retried until they succeed", async () => {
    api.failLists = 3;
    api.listDelayMs = 300;
    api.goneAsHttpStatus = false;
    try {
      api.cutWatches();
      api.apply(
        tokenScope("prod", "reports-read", {
          ...READ_SPEC,
          rules: [{ paths: ["/v1/x/*"], methods: ["GET"] }],
        }),
      );
      api.state.compact(); // forces a relist, which fails three times
      await until("failing lists", "route_not_allowed");
      assert.equal(api.failLists, 0, "all three failures were hit");
      const failed = api.requests.filter(
        (r) => r.method === "GET" && r.query.watch === undefined && r.status === 500,
      );
      assert.ok(failed.length >= 3);
    } finally {
      api.listDelayMs = 0;
      api.failLists = 0;
    }
    api.apply(tokenScope("prod", "reports-read", READ_SPEC));
    await until("after failing lists", "ok");
  });

  it("malformed watch events are ignored and cannot crash the server", async () => {
    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on("uncaughtException", onCrash);
    process.on("unhandledRejection", onCrash);
    try {
      await eventually("an open watch", () => (api.openWatches > 0 ? true : undefined));
      for (const line of [
        "not json at all",
        "[]",
        '{"type":"ADDED","object":null}',
        '{"type":"WEIRD","object":{}}',
        '{"type":"MODIFIED","object":{"metadata":"nope"}}',
        '{"type":"BOOKMARK","object":{}}',
        '{"type":"ADDED","object":{"metadata":{"name":"odd","namespace":"prod","resourceVersion":"1"},"spec":{"__proto__":{"owner":"x"},"rules":"all"}}}',
      ])
        api.injectLine(line);
      api.apply(
        tokenScope("prod", "reports-read", {
          ...READ_SPEC,
          rules: [{ paths: ["/v1/y/*"], methods: ["GET"] }],
        }),
      );
      await until("after garbage", "route_not_allowed");
      api.apply(tokenScope("prod", "reports-read", READ_SPEC));
      await until("after garbage, restored", "ok");
      assert.deepEqual(crashes, []);
      assert.ok(server.logLines.some((l) => l.includes("ignored a watch event")));
    } finally {
      process.off("uncaughtException", onCrash);
      process.off("unhandledRejection", onCrash);
    }
  });
});
