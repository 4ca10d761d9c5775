// Observability end to end: the real server on a real redis-server, a real Prometheus scraping it
// every second with the shipped rules loaded, and allowed and denied traffic from several tokens
// and scopes over real gRPC Checks. Everything the dashboard and the rules ask of Prometheus is
// asked of this one, and nothing a secret could leak into is left unread.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { formatToken, parseToken } from "../../src/domain/token.ts";
import { buildCheckRequest, type CheckRequestParams } from "../../src/envoy/check-request.ts";
import { describeRecord, printRecordTable } from "../../src/cli/token-output.ts";
import { startRedis, type RedisServer, type RedisValue } from "../harness/redis.ts";
import { openServerBackends, startTestServer, type TestServer } from "../harness/server.ts";
import { checkClient, type CheckClient } from "../harness/check-client.ts";
import { startPrometheus, type PrometheusServer } from "../harness/prometheus.ts";

const RULES_FILE = "deploy/prometheus/tokenscope-rules.yaml";
const DASHBOARD_FILE = "deploy/grafana/tokenscope.json";
/** Metrics other features export; an expression on them is checked once this build has them. */
const OWNED_ELSEWHERE = ["tokenscope_cache_lookups_total", "tokenscope_kube_watch_restarts_total"];
const CAP = 5;
const DEPLOYER = "spiffe://cluster.local/ns/ci/sa/deployer";

let redis: RedisServer;
let server: TestServer;
let prom: PrometheusServer;
let client: CheckClient;
let backends: Awaited<ReturnType<typeof openServerBackends>>;
const tokens: Record<string, { token: string; id: string; scope: string; owner: string }> = {};

interface Row {
  readonly name: string;
  readonly token: string | (() => string);
  readonly request: Partial<CheckRequestParams>;
  readonly decision: "allow" | "deny" | "dry_run_deny";
  readonly reason: string;
  /** Sent after the first scrape of each series, so rates and increases see them. */
  readonly count: number;
}

const READ: Partial<CheckRequestParams> = {
  method: "GET",
  path: "/v1/reports/2026",
  host: "reports.prod.svc.cluster.local",
  namespace: "prod",
};

const tokenOf = (key: string) => () => tokens[key]?.token ?? "";

// The first five rows name the five tokens that get a per-token slot (CAP); the revoked token
// comes sixth and is counted under _overflow.
const TRAFFIC: Row[] = [
  { name: "A", token: tokenOf("A"), request: READ, decision: "allow", reason: "ok", count: 7 },
  {
    name: "A",
    token: tokenOf("A"),
    request: { ...READ, method: "POST", path: "/v1/reports" },
    decision: "deny",
    reason: "route_not_allowed",
    count: 4,
  },
  {
    name: "B",
    token: tokenOf("B"),
    request: { ...READ, namespace: "staging" },
    decision: "deny",
    reason: "namespace_mismatch",
    count: 60,
  },
  { name: "B", token: tokenOf("B"), request: READ, decision: "allow", reason: "ok", count: 3 },
  {
    name: "C",
    token: tokenOf("C"),
    request: {
      method: "POST",
      path: "/v1/deployments/api",
      host: "deploy.prod.svc.cluster.local",
      namespace: "prod",
      sourceIp: "10.20.1.5",
      sourcePrincipal: DEPLOYER,
    },
    decision: "allow",
    reason: "ok",
    count: 5,
  },
  {
    name: "C",
    token: tokenOf("C"),
    request: {
      method: "POST",
      path: "/v1/deployments/api",
      host: "deploy.prod.svc.cluster.local",
      namespace: "prod",
      sourceIp: "192.168.1.1",
    },
    decision: "deny",
    reason: "source_not_allowed",
    count: 2,
  },
  {
    name: "D",
    token: tokenOf("D"),
    request: { ...READ, namespace: "staging" },
    decision: "allow",
    reason: "ok",
    count: 3,
  },
  {
    name: "D",
    token: tokenOf("D"),
    request: READ,
    decision: "deny",
    reason: "namespace_mismatch",
    count: 2,
  },
  {
    name: "K",
    token: tokenOf("K"),
    request: { ...READ, path: "/v2/reports/7" },
    decision: "allow",
    reason: "ok",
    count: 2,
  },
  {
    name: "K",
    token: tokenOf("K"),
    request: { ...READ, path: "/v1/admin" },
    decision: "dry_run_deny",
    reason: "route_not_allowed",
    count: 3,
  },
  { name: "R", token: tokenOf("R"), request: READ, decision: "deny", reason: "revoked", count: 4 },
  { name: "-", token: "", request: READ, decision: "deny", reason: "missing_token", count: 3 },
  {
    name: "-",
    token: "tks_prod_not-a-token",
    request: READ,
    decision: "deny",
    reason: "malformed_token",
    count: 2,
  },
  {
    // A's id with a wrong secret: names no token, so it is never counted per token.
    name: "-",
    token: () => wrongSecretFor(tokens.A?.token ?? ""),
    request: READ,
    decision: "deny",
    reason: "unknown_token",
    count: 5,
  },
];

function wrongSecretFor(token: string): string {
  const parsed = parseToken(token);
  assert.ok(parsed);
  // Same id, another secret, a valid checksum: only the store lookup can tell.
  return formatToken(parsed.environment, parsed.id, "Z".repeat(32));
}

async function send(row: Row, times: number): Promise<void> {
  const token = typeof row.token === "function" ? row.token() : row.token;
  for (let i = 0; i < times; i++) {
    const res = await client.check(
      buildCheckRequest({
        ...(READ as CheckRequestParams),
        ...row.request,
        token: token || undefined,
      }),
      5000,
    );
    const reason = res.status?.code === 0 ? undefined : res.status?.message;
    if (row.decision === "deny") assert.equal(reason, row.reason, `${row.name} ${row.reason}`);
    else assert.equal(res.status?.code, 0, `${row.name} ${row.reason} is let through`);
  }
}

/** Sent per (token_id, decision, reason), as the per-token counter must show it. */
function expectedPerToken(): Map<string, number> {
  const sent = new Map<string, number>();
  for (const row of TRAFFIC) {
    if (row.name === "-") continue;
    const id = row.name === "R" ? "_overflow" : (tokens[row.name]?.id ?? "");
    const key = `${id} ${row.decision} ${row.reason}`;
    sent.set(key, (sent.get(key) ?? 0) + 1 + row.count);
  }
  return sent;
}

async function metricsText(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
}

before(async () => {
  redis = await startRedis();
  server = await startTestServer({
    redisUrl: redis.url,
    extraArgs: [
      `--metrics-max-tokens=${CAP}`,
      "--inventory-interval=1s",
      "--usage-interval=1s",
      "--audit-allow-sample=1",
    ],
  });
  client = checkClient(server.grpcPort);
  backends = await openServerBackends(server);
  prom = await startPrometheus({
    targets: [`127.0.0.1:${server.httpPort}`],
    ruleFiles: [RULES_FILE],
  });
  const DAY = 86_400_000;
  const issue = async (key: string, scope: string, owner: string, ttlMs: number) => {
    const { token, record } = await backends.tokens.issue({
      scope,
      owner,
      ttlMs,
      labels: {},
      createdBy: "observability-test",
    });
    tokens[key] = { token, id: record.id, scope, owner };
  };
  await issue("A", "prod/reports-read", "team-analytics", DAY); // expires within 7 days
  await issue("B", "prod/reports-read", "team-reporting", 30 * DAY);
  await issue("C", "prod/ci-deploy", "team-platform", 30 * DAY);
  await issue("D", "staging/reports-read", "team-analytics", 30 * DAY);
  await issue("K", "prod/reports-canary", "team-analytics", 30 * DAY);
  await issue("R", "prod/reports-read", "erin", 30 * DAY);
  await backends.tokens.revoke(tokens.R?.id ?? "", "observability-test");

  // Phase 1: one request of each row, then wait until Prometheus holds every per-token series.
  for (const row of TRAFFIC) await send(row, 1);
  await prom.eventually(async () => {
    const series = await prom.query("tokenscope_token_checks_total");
    assert.equal(series.length, expectedPerToken().size);
  });
  // Phase 2: the bulk, so that rates over the series are not zero.
  for (const row of TRAFFIC) await send(row, row.count);
});

after(async () => {
  client.close();
  await backends.close();
  await prom.stop();
  await server.stop();
  await redis.stop();
});

describe("observability on a real Prometheus", () => {
  it("holds per-token counts equal to the requests sent, the sixth token under _overflow", async () => {
    const expected = expectedPerToken();
    await prom.eventually(async () => {
      const series = await prom.query(
        "sum by (token_id, decision, reason) (tokenscope_token_checks_total)",
      );
      const got = new Map(
        series.map((s) => [
          `${s.metric.token_id ?? ""} ${s.metric.decision ?? ""} ${s.metric.reason ?? ""}`,
          Number(s.value[1]),
        ]),
      );
      assert.deepEqual(got, expected);
    });
    const owners = await prom.query(
      `group by (token_id, scope, owner) (tokenscope_token_checks_total{token_id="${tokens.B?.id ?? ""}"})`,
    );
    assert.deepEqual(
      owners.map((s) => [s.metric.scope, s.metric.owner]),
      [["prod/reports-read", "team-reporting"]],
    );
  });

  it("counts every check in tokenscope_checks_total, verified token or not", async () => {
    const sent = new Map<string, number>();
    for (const row of TRAFFIC) {
      const key = `${row.decision} ${row.reason}`;
      sent.set(key, (sent.get(key) ?? 0) + 1 + row.count);
    }
    await prom.eventually(async () => {
      const series = await prom.query("sum by (decision, reason) (tokenscope_checks_total)");
      const got = new Map(
        series.map((s) => [
          `${s.metric.decision ?? ""} ${s.metric.reason ?? ""}`,
          Number(s.value[1]),
        ]),
      );
      assert.deepEqual(got, sent);
    });
  });

  it("answers every dashboard query, with all values and with one token selected", async (t) => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
    const exposition = await metricsText();
    const selections: Record<string, Record<string, string>> = {
      "all values": { namespace: ".*", scope: ".*", owner: ".*", token_id: tokens.B?.id ?? "" },
      "one token": {
        namespace: "prod",
        scope: "prod/reports-read",
        owner: "team-analytics",
        token_id: tokens.A?.id ?? "",
      },
    };
    let checked = 0;
    for (const [selection, vars] of Object.entries(selections)) {
      for (const { title, expr } of dashboardQueries(dashboard)) {
        const query = interpolate(expr, vars);
        if (ownedElsewhereAndAbsent(query, exposition, t)) continue;
        await prom.eventually(async () => {
          const result = await prom.query(query);
          assert.ok(result.length > 0, `"${title}" (${selection}) returned no data: ${query}`);
        });
        checked++;
      }
    }
    assert.ok(checked >= 2 * 15, `only ${checked} dashboard queries were checked`);
  });

  it("lists the traffic's values in every dashboard variable", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
    const expected: Record<string, string[]> = {
      namespace: ["prod", "staging"],
      scope: ["prod/reports-read", "prod/ci-deploy", "staging/reports-read", "prod/reports-canary"],
      owner: ["team-analytics", "team-reporting", "team-platform"],
      token_id: ["A", "B", "C", "D", "K"].map((k) => tokens[k]?.id ?? ""),
    };
    for (const v of dashboard.templating.list) {
      if (v.type !== "query") continue;
      const m = /^label_values\((.*),\s*(\w+)\)$/.exec(v.definition ?? "");
      assert.ok(m, `${v.name} is a label_values query`);
      const match = interpolate(m[1] ?? "", { scope: ".*", owner: ".*" });
      const values = await prom.labelValues(m[2] ?? "", match);
      for (const want of expected[v.name] ?? ["?"]) {
        assert.ok(values.includes(want), `${v.name} offers ${want} (got ${values.join(", ")})`);
      }
    }
  });

  it("evaluates every rule expression to data for this traffic", async (t) => {
    const exposition = await metricsText();
    for (const rule of ruleList()) {
      // An alert's expression is empty while its condition is false; with `bool` comparisons it
      // returns the series it compares, 1 where it would fire: that proves it reads real data.
      const expr = rule.alert === undefined ? rule.expr : boolComparisons(rule.expr);
      if (ownedElsewhereAndAbsent(expr, exposition, t)) continue;
      await prom.eventually(async () => {
        const result = await prom.query(expr);
        assert.ok(
          result.length > 0,
          `${rule.record ?? rule.alert ?? ""} returned no data: ${expr}`,
        );
      });
    }
    const recorded = await prom.query("tokenscope:token_denies:rate5m");
    assert.ok(
      recorded.some((s) => s.metric.token_id === tokens.B?.id),
      "Prometheus evaluates the recording rules",
    );
  });

  it("raises the leak/misuse alert for the token denied a lot, naming its scope and owner", async () => {
    const alerts = await prom.eventually(async () => {
      const all = await prom.alerts();
      const spike = all.filter((a) => a.labels.alertname === "TokenscopeTokenDeniedSpike");
      assert.equal(spike.length, 1, JSON.stringify(all));
      return all;
    });
    const spike = alerts.find((a) => a.labels.alertname === "TokenscopeTokenDeniedSpike");
    assert.deepEqual(
      [spike?.labels.token_id, spike?.labels.scope, spike?.labels.owner],
      [tokens.B?.id, "prod/reports-read", "team-reporting"],
    );
    assert.ok(spike?.state === "pending" || spike?.state === "firing");
    const names = new Set(
      alerts.map(
        (a) => `${a.labels.alertname ?? ""} ${a.labels.scope ?? a.labels.namespace ?? ""}`,
      ),
    );
    assert.ok(names.has("TokenscopeTokensExpiringSoon prod/reports-read"), [...names].join("; "));
    assert.ok(
      names.has("TokenscopeScopesNotReady prod"),
      "the fixtures' broken scope is not ready",
    );
    assert.ok(names.has("TokenscopeTokenMetricsOverflow "), "the sixth token overflowed");
    assert.ok(!names.has("TokenscopeStoreUnavailable "), "the store was up");
  });

  it("exports the token inventory and scope readiness from the store and the scope index", async () => {
    await prom.eventually(async () => {
      const rows = await prom.query('tokenscope_tokens{scope="prod/reports-read"}');
      const byState = Object.fromEntries(
        rows.map((s) => [s.metric.state ?? "", Number(s.value[1])]),
      );
      assert.deepEqual(byState, { active: 1, expiring_soon: 1, expired: 0, revoked: 1 });
    });
    const scopes = await prom.query("tokenscope_scopes");
    const table = Object.fromEntries(
      scopes.map((s) => [
        `${s.metric.namespace ?? ""} ${s.metric.ready ?? ""}`,
        Number(s.value[1]),
      ]),
    );
    assert.deepEqual(table, {
      "prod true": 3,
      "prod false": 1,
      "staging true": 1,
      "staging false": 0,
    });
  });

  it("writes each token's last use and source back to the store, shown by token inspect", async () => {
    await prom.eventually(async () => {
      const c = await backends.store.get(tokens.C?.id ?? "");
      assert.equal(c?.lastSource, "192.168.1.1", "the last verified use, denied or not");
      const a = await backends.store.get(tokens.A?.id ?? "");
      assert.ok(a?.lastUsedAt !== undefined && a.lastUsedAt > a.createdAt);
    }, 15_000);
    const a = await backends.store.get(tokens.A?.id ?? "");
    assert.ok(a);
    const text = describeRecord(a, backends.scopes, Date.now()).join("\n");
    assert.match(text, /last used: {3}\d{4}-\d\d-\d\dT.* from 127\.0\.0\.1/);
    const c = await backends.store.get(tokens.C?.id ?? "");
    assert.ok(c);
    const row = printRecordTable([c], Date.now()).split("\n")[1] ?? "";
    assert.match(row, /ago\s+192\.168\.1\.1$/, "token list shows when and from where");
  });

  it("writes one audit line per deny and per allow at sample 1, with the fields of SPEC §6", () => {
    const audit = server.logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.audit === true && l.event === "check");
    const total = TRAFFIC.reduce((n, r) => n + 1 + r.count, 0);
    assert.equal(audit.length, total);
    const leak = audit.find((l) => l.token_id === tokens.B?.id && l.decision === "deny");
    assert.ok(leak);
    for (const field of [
      "owner",
      "scope",
      "reason",
      "method",
      "host",
      "path",
      "source",
      "request_id",
    ]) {
      assert.ok(leak[field], `audit line has ${field}`);
    }
    assert.equal(leak.owner, "team-reporting");
    const unknown = audit.find((l) => l.reason === "unknown_token");
    assert.equal(unknown?.token_id, undefined, "an unverified id is not named");
  });

  it("keeps the lifecycle events in the store's audit journal", async () => {
    const events = await backends.store.events({ tokenId: tokens.R?.id ?? "" });
    assert.deepEqual(
      events.map((e) => [e.event, e.owner, e.by]),
      [
        ["issue", "erin", "observability-test"],
        ["revoke", "erin", "observability-test"],
      ],
    );
  });

  it("leaves no secret in /metrics, the logs, or any Redis key or value", async () => {
    const secrets = Object.values(tokens).flatMap(({ token }) => {
      const parsed = parseToken(token);
      assert.ok(parsed);
      return [token, parsed.secret];
    });
    assert.equal(secrets.length, 12);
    const places: [string, string][] = [
      ["/metrics", await metricsText()],
      ["server log and audit lines", server.logLines.join("")],
      ["Prometheus log", prom.output()],
    ];
    for (const label of await prom.labelNames()) {
      const values = await prom.labelValues(label, '{job="tokenscope"}');
      places.push([`Prometheus label ${label}`, values.join("\n")]);
    }
    let cursor = "0";
    let keys = 0;
    do {
      const [next, found] = (await redis.reply("SCAN", cursor, "COUNT", "1000")) as [
        string,
        string[],
      ];
      cursor = next;
      for (const key of found) {
        keys++;
        places.push([`redis key ${key}`, key]);
        places.push([`redis value of ${key}`, flatten(await redisValue(key))]);
      }
    } while (cursor !== "0");
    assert.ok(keys >= 8, `scanned ${keys} keys: token records, the index and the audit stream`);
    for (const [where, text] of places) {
      for (const secret of secrets)
        assert.ok(!text.includes(secret), `a secret appears in ${where}`);
    }
  });
});

async function redisValue(key: string): Promise<RedisValue> {
  const type = await redis.command("TYPE", key);
  switch (type) {
    case "string":
      return redis.reply("GET", key);
    case "set":
      return redis.reply("SMEMBERS", key);
    case "stream":
      return redis.reply("XRANGE", key, "-", "+");
    case "hash":
      return redis.reply("HGETALL", key);
    case "list":
      return redis.reply("LRANGE", key, "0", "-1");
    case "zset":
      return redis.reply("ZRANGE", key, "0", "-1", "WITHSCORES");
    default:
      throw new Error(`key ${key} has unexpected type ${String(type)}`);
  }
}

function flatten(v: RedisValue): string {
  return Array.isArray(v) ? v.map(flatten).join("\n") : (v ?? "");
}

interface Dashboard {
  panels: { title: string; type: string; targets?: { expr: string }[] }[];
  templating: { list: { name: string; type: string; definition?: string }[] };
}

function dashboardQueries(d: Dashboard): { title: string; expr: string }[] {
  return d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
}

/** What Grafana does to a query before sending it, for the variables of this dashboard. */
function interpolate(expr: string, vars: Record<string, string>): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__range", "10m")
    .replaceAll("$__interval", "15s")
    .replace(/\$(\w+)/g, (_, name: string) => {
      const value = vars[name];
      if (value === undefined) throw new Error(`no value for dashboard variable $${name}`);
      return value;
    });
}

function boolComparisons(expr: string): string {
  return expr.replace(/ (>=|<=|==|!=|>|<) (?!bool )/g, " $1 bool ");
}

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
}

function ruleList(): Rule[] {
  const file = parseYaml(readFileSync(RULES_FILE, "utf8")) as { groups: { rules: Rule[] }[] };
  return file.groups.flatMap((g) => g.rules);
}

function ownedElsewhereAndAbsent(
  expr: string,
  exposition: string,
  t: { diagnostic(message: string): void },
): boolean {
  const metric = OWNED_ELSEWHERE.find((m) => expr.includes(m));
  if (metric === undefined || exposition.includes(`# TYPE ${metric} `)) return false;
  t.diagnostic(`not checked: ${metric} is exported by another feature, not by this build`);
  return true;
}
