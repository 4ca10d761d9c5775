// GCRA arithmetic with an injected clock, and how a rate outcome changes a decision.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Decision } from "../../src/domain/decide.ts";
import {
  applyRateOutcome,
  gcraParams,
  gcraStep,
  retryAfterSeconds,
} from "../../src/domain/rate-limit.ts";
import { createLocalRateLimiter } from "../../src/store/local-rate-limiter.ts";

interface Row {
  readonly name: string;
  readonly limit: { requestsPerSecond: number; burst: number };
  /** Arrival times (ms) of successive requests. */
  readonly at: readonly number[];
  /** Expected outcome per request: true allowed; a number is the retry-after (ms) of a deny. */
  readonly expect: readonly (true | number)[];
}

const rows: Row[] = [
  {
    name: "a burst of `burst` requests at once is allowed, the next waits one interval",
    limit: { requestsPerSecond: 10, burst: 3 },
    at: [0, 0, 0, 0],
    expect: [true, true, true, 100],
  },
  {
    name: "after one interval exactly one more request is allowed",
    limit: { requestsPerSecond: 10, burst: 3 },
    at: [0, 0, 0, 100, 100],
    expect: [true, true, true, true, 100],
  },
  {
    name: "requests at the steady rate are all allowed",
    limit: { requestsPerSecond: 2, burst: 1 },
    at: [0, 500, 1000, 1500, 2000],
    expect: [true, true, true, true, true],
  },
  {
    name: "a request just early is told how long to wait",
    limit: { requestsPerSecond: 2, burst: 1 },
    at: [0, 400, 500],
    expect: [true, 100, true],
  },
  {
    name: "denied requests do not spend the budget",
    limit: { requestsPerSecond: 1, burst: 1 },
    at: [0, 100, 200, 300, 1000],
    expect: [true, 900, 800, 700, true],
  },
  {
    name: "an idle token earns back at most `burst`, not more",
    limit: { requestsPerSecond: 10, burst: 2 },
    at: [0, 60_000, 60_000, 60_000],
    expect: [true, true, true, 100],
  },
  {
    name: "a fractional rate spaces requests by its interval",
    limit: { requestsPerSecond: 0.5, burst: 1 },
    at: [0, 1000, 2000],
    expect: [true, 1000, true],
  },
];

describe("GCRA", () => {
  for (const row of rows) {
    it(row.name, () => {
      const params = gcraParams(row.limit);
      let tat: number | undefined;
      row.at.forEach((now, i) => {
        const step = gcraStep(tat, now, params);
        const want = row.expect[i];
        if (want === true) {
          assert.equal(step.allowed, true, `request ${i} at ${now} allowed`);
          assert.equal(step.retryAfterMs, 0);
        } else {
          assert.equal(step.allowed, false, `request ${i} at ${now} denied`);
          assert.ok(
            Math.abs(step.retryAfterMs - (want ?? NaN)) < 1e-6,
            `retry ${step.retryAfterMs}`,
          );
          assert.equal(step.tat, tat, "a denied request leaves the TAT as it was");
        }
        tat = step.tat;
      });
    });
  }

  it("over a long run allows burst + rate × time, whatever the offered load", () => {
    const params = gcraParams({ requestsPerSecond: 50, burst: 10 });
    let tat: number | undefined;
    let allowed = 0;
    for (let now = 0; now <= 10_000; now += 5) {
      const step = gcraStep(tat, now, params);
      tat = step.tat;
      if (step.allowed) allowed++;
    }
    assert.equal(allowed, 10 + 50 * 10);
  });

  it("retry-after is whole seconds and never 0", () => {
    assert.equal(retryAfterSeconds(1), 1);
    assert.equal(retryAfterSeconds(1000), 1);
    assert.equal(retryAfterSeconds(1001), 2);
  });

  it("the embedded limiter counts each key separately on its clock", () => {
    let now = 0;
    const limiter = createLocalRateLimiter(() => now);
    const limit = { requestsPerSecond: 1, burst: 1 };
    assert.equal(limiter.consume("prod/a:t1", limit).allowed, true);
    assert.equal(limiter.consume("prod/a:t1", limit).allowed, false);
    assert.equal(limiter.consume("prod/a:t2", limit).allowed, true);
    now += 1000;
    assert.equal(limiter.consume("prod/a:t1", limit).allowed, true);
  });
});

describe("a rate outcome applied to a decision", () => {
  const token = { id: "abc", scope: "prod/r", owner: "o" };
  const allow: Decision = { allowed: true, reason: "ok", token, scopeNamespace: "prod" };
  const limited = { allowed: false, retryAfterMs: 250 };

  it("an enforcing scope denies rate_limited with the retry time", () => {
    assert.deepEqual(applyRateOutcome(allow, "Enforce", limited), {
      allowed: false,
      reason: "rate_limited",
      token,
      scopeNamespace: "prod",
      retryAfterMs: 250,
    });
  });

  it("a DryRun scope allows and reports the would-be rate_limited", () => {
    assert.deepEqual(applyRateOutcome(allow, "DryRun", limited), {
      ...allow,
      dryRunDeny: "rate_limited",
    });
  });

  it("an allowed outcome, or an earlier would-deny, leaves the decision as it was", () => {
    assert.equal(applyRateOutcome(allow, "Enforce", { allowed: true, retryAfterMs: 0 }), allow);
    const wouldDeny: Decision = { ...allow, dryRunDeny: "route_not_allowed" };
    assert.equal(applyRateOutcome(wouldDeny, "DryRun", limited), wouldDeny);
  });
});
