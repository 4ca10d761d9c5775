// The shipped monitoring artifacts: rules checked and unit-tested by the real promtool, the
// Operator and Helm copies identical to the plain files, the dashboard importable as is.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { promtool } from "../harness/prometheus.ts";

const RULES = "deploy/prometheus/tokenscope-rules.yaml";
const read = (path: string) => readFileSync(path, "utf8");

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; datasource?: { uid: string } }[];
}

describe("Prometheus rules", () => {
  it("pass promtool check rules", () => {
    const r = promtool("check", "rules", RULES);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS: 10 rules found/);
  });

  it("pass their promtool unit tests, the leak/misuse alert firing on a synthetic series", () => {
    const r = promtool("test", "rules", "test/prometheus/tokenscope-rules.test.yaml");
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS/);
    const tests = read("test/prometheus/tokenscope-rules.test.yaml");
    assert.match(
      tests,
      /alertname: TokenscopeTokenDeniedSpike[\s\S]*exp_labels:[\s\S]*Leaked000001/,
    );
  });

  it("are the same groups in the PrometheusRule and in the Helm chart", () => {
    const plain = parseYaml(read(RULES)) as { groups: unknown[] };
    const operator = parseYaml(read("deploy/prometheus/prometheusrule.yaml")) as {
      kind: string;
      spec: { groups: unknown[] };
    };
    assert.equal(operator.kind, "PrometheusRule");
    assert.deepEqual(operator.spec.groups, plain.groups);
    assert.equal(read("charts/tokenscope/files/tokenscope-rules.yaml"), read(RULES));
  });

  it("cover the alerts the product promises", () => {
    const alerts = (parseYaml(read(RULES)) as { groups: { rules: { alert?: string }[] }[] }).groups
      .flatMap((g) => g.rules)
      .map((r) => r.alert)
      .filter((a) => a !== undefined);
    for (const name of [
      "TokenscopeTokenDeniedSpike",
      "TokenscopeTokensExpiringSoon",
      "TokenscopeStoreUnavailable",
      "TokenscopeScopesNotReady",
      "TokenscopeKubeWatchStalled",
      "TokenscopeCheckLatencyHigh",
    ]) {
      assert.ok(alerts.includes(name), `${name} is shipped`);
    }
  });
});

describe("Helm templates", () => {
  const dir = "charts/tokenscope";
  const templates = ["servicemonitor.yaml", "prometheusrule.yaml", "grafana-dashboard.yaml"].map(
    (f) => read(`${dir}/templates/${f}`),
  );
  const values = parseYaml(read(`${dir}/values.yaml`)) as Record<string, unknown>;

  it("read only files that the chart ships", () => {
    const files = templates.flatMap((t) =>
      [...t.matchAll(/\.Files\.Get "([^"]+)"/g)].map((m) => m[1]),
    );
    assert.deepEqual(files.sort(), [
      "files/tokenscope-dashboard.json",
      "files/tokenscope-rules.yaml",
    ]);
  });

  it("are each off unless its value is set, and every value they read is documented", () => {
    const guards = templates.map((t) => /\$(\w+) := dig ((?:"\w+" )+)dict \.Values\.AsMap/.exec(t));
    const paths = guards.map((g) => (g?.[2] ?? "").trim().replaceAll('"', "").split(" "));
    assert.deepEqual(paths, [
      ["metrics", "serviceMonitor"],
      ["metrics", "prometheusRule"],
      ["grafana", "dashboard"],
    ]);
    templates.forEach((t, i) => {
      const section = paths[i]?.reduce<unknown>(
        (v, k) => (v as Record<string, unknown> | undefined)?.[k],
        values,
      ) as Record<string, unknown>;
      assert.equal(section.enabled, false, "off by default");
      assert.match(t, /\{\{- if \(dig "enabled" false \$\w+\) \}\}/);
      for (const m of t.matchAll(/dig "(\w+)"/g)) {
        const key = m[1] ?? "";
        if (["metrics", "grafana", "serviceMonitor", "prometheusRule", "dashboard"].includes(key))
          continue;
        assert.ok(key in section, `${paths[i]?.join(".") ?? ""}.${key} is in values.yaml`);
      }
    });
    const dashboard = (values.grafana as { dashboard: { labels: unknown } }).dashboard;
    assert.deepEqual(dashboard.labels, { grafana_dashboard: "1" }, "the Grafana sidecar's label");
  });
});

describe("Grafana dashboard", () => {
  const json = read("deploy/grafana/tokenscope.json");
  const d = JSON.parse(json) as {
    uid: string;
    id?: unknown;
    schemaVersion: number;
    panels: Panel[];
    templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
  };
  const panels = d.panels.filter((p) => p.type !== "row");

  it("imports as is: a current schemaVersion, a fixed uid, no instance-specific id", () => {
    assert.ok(d.schemaVersion >= 41, `schemaVersion ${d.schemaVersion}`);
    assert.equal(d.uid, "tokenscope");
    assert.equal(d.id, undefined);
    assert.equal(read("charts/tokenscope/files/tokenscope-dashboard.json"), json);
  });

  it("takes its data source from a datasource variable, in every panel and query", () => {
    const ds = d.templating.list.find((v) => v.name === "datasource");
    assert.deepEqual([ds?.type, ds?.query], ["datasource", "prometheus"]);
    for (const p of panels) {
      assert.equal(p.datasource?.uid, "${datasource}", p.title);
      for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, "${datasource}", p.title);
    }
  });

  it("offers namespace, scope, owner and token_id variables from label_values", () => {
    for (const name of ["namespace", "scope", "owner", "token_id"]) {
      const v = d.templating.list.find((x) => x.name === name);
      assert.equal(v?.type, "query", name);
      assert.match(v.definition ?? "", /^label_values\(.+, \w+\)$/, name);
    }
  });

  it("has the panels users look for, laid out without overlap", () => {
    const titles = panels.map((p) => p.title.toLowerCase());
    for (const want of [
      "checks/s by decision",
      "denies/s by reason",
      "top tokens by requests",
      "one token's traffic",
      "latency p50 / p99",
      "tokens by state",
      "expiring soon",
      "store errors",
      "cache hit ratio",
      "watch restarts",
      "who owns",
    ]) {
      assert.ok(
        titles.some((t) => t.includes(want)),
        `a panel for ${want}`,
      );
    }
    assert.equal(new Set(d.panels.map((p) => p.id)).size, d.panels.length, "unique panel ids");
    const cells = new Set<string>();
    for (const p of d.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits in 24 columns`);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel`);
          cells.add(`${x},${y}`);
        }
      }
    }
    for (const p of panels) assert.ok((p.targets ?? []).length > 0, `${p.title} has a query`);
  });
});
