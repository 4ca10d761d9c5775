// Per-token counters (SPEC §6): the cap, `_overflow`, and idle eviction of every label set, read
// back from prom-client's own exposition text, on an injected clock.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createMetrics } from "../../src/observability/metrics.ts";
import { deny, type Decision, type TokenIdentity } from "../../src/domain/decide.ts";

const MINUTE = 60_000;

function token(n: number): TokenIdentity {
  return {
    id: `tok${String(n).padStart(9, "0")}`,
    scope: "prod/reports-read",
    owner: `owner-${n}`,
  };
}

const allow = (t: TokenIdentity): Decision => ({
  allowed: true,
  reason: "ok",
  token: t,
  scopeNamespace: "prod",
});

function setup(maxTokens: number, idleMs: number) {
  let now = 1_700_000_000_000;
  const metrics = createMetrics({ maxTokens, tokenIdleMs: idleMs, clock: () => now });
  return {
    metrics,
    advance: (ms: number) => (now += ms),
    record: (d: Decision) => metrics.recordCheck(d, "prod", 0.0001),
    /** token_check series: [labels text, value] from the exposition. */
    async series(): Promise<[string, number][]> {
      const text = await metrics.registry.metrics();
      return [...text.matchAll(/^tokenscope_token_checks_total\{(.*)\} (\S+)$/gm)].map((m) => [
        m[1] ?? "",
        Number(m[2]),
      ]);
    },
  };
}

const idsIn = (series: [string, number][]) =>
  new Set(series.map(([l]) => /token_id="([^"]*)"/.exec(l)?.[1]));

describe("per-token metrics", () => {
  it("exports at most the cap plus _overflow with three times the cap of distinct tokens", async () => {
    const cap = 5;
    const m = setup(cap, 60 * MINUTE);
    for (let i = 0; i < 3 * cap; i++) {
      m.record(allow(token(i)));
      m.record(deny("route_not_allowed", token(i), "prod"));
    }
    const series = await m.series();
    const ids = idsIn(series);
    assert.equal(ids.size, cap + 1);
    assert.ok(ids.has("_overflow"));
    for (let i = 0; i < cap; i++) assert.ok(ids.has(token(i).id), `the first ${cap} keep a slot`);
    const overflow = series.filter(([l]) => l.includes('token_id="_overflow"'));
    const total = overflow.reduce((sum, [, v]) => sum + v, 0);
    assert.equal(total, 2 * 2 * cap, "every check of the 2×cap late tokens is counted");
    assert.ok(
      overflow.every(([l]) => l.includes('owner=""')),
      "no owners under _overflow",
    );
    // Owners differ per token here: they must share the one owner-less series, not repeat it
    // (Prometheus refuses a scrape with the same series twice).
    const labelSets = overflow.map(([l]) => l);
    assert.equal(new Set(labelSets).size, labelSets.length, "no series twice");
    assert.equal(overflow.length, 2, "one series per decision and reason");
  });

  it("counts every check of a token whose outcome changes back and forth", async () => {
    const m = setup(5, 60 * MINUTE);
    const t = token(1);
    for (let i = 0; i < 10; i++) {
      m.record(allow(t));
      if (i % 3 === 0) m.record(deny("route_not_allowed", t, "prod"));
    }
    const values: Record<string, number> = {};
    for (const [labels, value] of await m.series()) {
      values[/reason="(\w+)"/.exec(labels)?.[1] ?? "?"] = value;
    }
    assert.deepEqual(values, { ok: 10, route_not_allowed: 4 });
  });

  it("counts each of three outcomes of one token in turn, first outcome included", async () => {
    const m = setup(5, 60 * MINUTE);
    const t = token(1);
    const outcomes = [
      allow(t),
      deny("route_not_allowed", t, "prod"),
      deny("source_not_allowed", t, "prod"),
    ];
    for (let i = 0; i < 12; i++)
      m.record(outcomes[i % 3 === 0 ? 0 : i % 2 === 0 ? 1 : 2] as Decision);
    const values: Record<string, number> = {};
    for (const [labels, value] of await m.series()) {
      values[/reason="(\w+)"/.exec(labels)?.[1] ?? "?"] = value;
    }
    assert.deepEqual(values, { ok: 4, route_not_allowed: 4, source_not_allowed: 4 });
  });

  it("removes every label set of an idle token and gives its slot to a new one", async () => {
    const m = setup(2, 10 * MINUTE);
    const [a, b, c] = [token(1), token(2), token(3)];
    m.record(allow(a));
    m.record(deny("route_not_allowed", a, "prod"));
    m.record(deny("source_not_allowed", a, "prod"));
    m.advance(6 * MINUTE);
    m.record(allow(b));
    m.advance(5 * MINUTE); // a idle 11 min, b 5 min
    m.record(allow(c));
    const ids = idsIn(await m.series());
    assert.deepEqual([...ids].sort(), [b.id, c.id].sort());
    const text = await m.metrics.registry.metrics();
    assert.ok(!text.includes(a.id), "no series of the evicted id remains");
  });

  it("a full table gives the slot of the oldest id to a new one exactly when it goes idle", async () => {
    const m = setup(2, 10 * MINUTE);
    const [a, b, c, d] = [token(1), token(2), token(3), token(4)];
    m.record(allow(a));
    m.advance(MINUTE);
    m.record(allow(b));
    m.advance(MINUTE);
    m.record(allow(c)); // full, nobody idle: _overflow
    m.advance(8 * MINUTE - 1);
    m.record(allow(c)); // a idle 10 min less 1 ms: still _overflow
    assert.deepEqual([...idsIn(await m.series())].sort(), [a.id, b.id, "_overflow"].sort());
    m.advance(1);
    m.record(allow(d)); // a idle 10 min: its slot goes to d
    assert.deepEqual([...idsIn(await m.series())].sort(), [b.id, d.id, "_overflow"].sort());
  });

  it("a table that emptied and filled again still frees slots when its ids go idle", async () => {
    const m = setup(1, 10 * MINUTE);
    m.record(allow(token(1)));
    m.advance(11 * MINUTE);
    m.metrics.tokenSeries.sweep(); // empty now
    m.record(allow(token(2)));
    m.record(allow(token(3))); // full: _overflow
    m.advance(10 * MINUTE);
    m.record(allow(token(4)));
    assert.ok(idsIn(await m.series()).has(token(4).id));
  });

  it("keeps a busy token's series and counts from where it was", async () => {
    const m = setup(2, 10 * MINUTE);
    const a = token(1);
    for (let i = 0; i < 4; i++) {
      m.record(allow(a));
      m.advance(9 * MINUTE);
    }
    m.metrics.tokenSeries.sweep();
    assert.deepEqual(await m.series(), [
      [
        `token_id="${a.id}",scope="prod/reports-read",owner="owner-1",decision="allow",reason="ok"`,
        4,
      ],
    ]);
  });

  it("sweeps idle tokens on its own schedule, without a new id arriving", async () => {
    const m = setup(10, 4 * MINUTE);
    m.record(allow(token(1)));
    m.advance(5 * MINUTE);
    m.record(allow(token(2))); // a known-path record call past the sweep time
    m.record(allow(token(2)));
    assert.deepEqual([...idsIn(await m.series())], [token(2).id]);
  });

  it("never names a token whose secret was not verified", async () => {
    const m = setup(10, MINUTE);
    m.record(deny("unknown_token"));
    m.record(deny("malformed_token"));
    assert.deepEqual(await m.series(), []);
  });

  it("counts whatever reason a verified token's decision carries (rate_limited)", async () => {
    const m = setup(10, MINUTE);
    m.record(deny("rate_limited", token(1), "prod"));
    const [only] = await m.series();
    assert.match(only?.[0] ?? "", /decision="deny",reason="rate_limited"/);
  });

  it("counts dry-run would-denies under their reason", async () => {
    const m = setup(10, MINUTE);
    m.record({ ...allow(token(1)), dryRunDeny: "route_not_allowed" } as Decision);
    const [only] = await m.series();
    assert.match(only?.[0] ?? "", /decision="dry_run_deny",reason="route_not_allowed"/);
  });
});

describe("per-token metrics without traffic", () => {
  it("drops idle tokens when scraped, even if no check arrives", async () => {
    const m = setup(10, 4 * MINUTE);
    m.record(allow(token(1)));
    m.advance(5 * MINUTE);
    assert.deepEqual(await m.series(), []);
  });
});

describe("per-token metrics exposition", () => {
  it("escapes an owner's quotes, backslashes and newlines as the text format requires", async () => {
    const m = setup(10, MINUTE);
    m.record(allow({ id: "tok000000001", scope: "prod/x", owner: 'a "b" \\ c\nd' }));
    const text = await m.metrics.registry.metrics();
    assert.ok(text.includes('owner="a \\"b\\" \\\\ c\\nd"'), text);
    assert.match(text, /^# TYPE tokenscope_token_checks_total counter$/m);
  });

  it("lists the per-token series in the registry's JSON like any other metric", async () => {
    const m = setup(10, MINUTE);
    m.record(allow(token(1)));
    const json = await m.metrics.registry.getMetricsAsJSON();
    const family = json.find((f) => f.name === "tokenscope_token_checks_total");
    assert.deepEqual(family?.values, [
      {
        labels: {
          token_id: token(1).id,
          scope: "prod/reports-read",
          owner: "owner-1",
          decision: "allow",
          reason: "ok",
        },
        value: 1,
      },
    ]);
  });
});
