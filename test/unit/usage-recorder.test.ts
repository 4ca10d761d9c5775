// Usage write-back: the request path only notes; one batch per interval holds each token once,
// with its latest use. The sink records the batches it is given.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { UsageRecorder } from "../../src/tokens/usage-recorder.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { TokenUsage } from "../../src/store/token-store.ts";

const quiet = createLogger({ level: "error", write: () => undefined });

function recorder(fail = false) {
  const batches: TokenUsage[][] = [];
  const r = new UsageRecorder({
    store: {
      recordUsage: (u) => {
        batches.push([...u]);
        return fail ? Promise.reject(new Error("store down")) : Promise.resolve();
      },
    },
    logger: quiet,
    intervalMs: 10_000,
  });
  return { r, batches };
}

describe("usage recorder", () => {
  it("writes each token once per flush, with its latest use", async () => {
    const { r, batches } = recorder();
    for (let i = 0; i < 1000; i++) r.seen("aaaaaaaaaaaa", 1000 + i, `10.0.0.${i % 3}`);
    r.seen("bbbbbbbbbbbb", 5000, undefined);
    await r.flush();
    assert.deepEqual(batches, [
      [
        { id: "aaaaaaaaaaaa", at: 1999, source: "10.0.0.0" },
        { id: "bbbbbbbbbbbb", at: 5000, source: "" },
      ],
    ]);
    await r.flush();
    assert.equal(batches.length, 1, "nothing seen, nothing written");
  });

  it("a use noted while a batch is written goes to the next batch, leaving that one as it was", async () => {
    const written: TokenUsage[][] = [];
    let release: () => void = () => undefined;
    const r = new UsageRecorder({
      store: {
        recordUsage: (u) => {
          written.push(u as TokenUsage[]);
          return new Promise((resolve) => (release = resolve));
        },
      },
      logger: quiet,
      intervalMs: 10_000,
    });
    r.seen("aaaaaaaaaaaa", 1, "10.0.0.1");
    const flushing = r.flush();
    await new Promise((resolve) => setImmediate(resolve));
    r.seen("aaaaaaaaaaaa", 2, "10.0.0.2");
    release();
    await flushing;
    assert.deepEqual(written, [[{ id: "aaaaaaaaaaaa", at: 1, source: "10.0.0.1" }]]);
    const next = r.flush();
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await next;
    assert.deepEqual(written[1], [{ id: "aaaaaaaaaaaa", at: 2, source: "10.0.0.2" }]);
  });

  it("never throws on a failing store and keeps serving later uses", async () => {
    const { r, batches } = recorder(true);
    r.seen("aaaaaaaaaaaa", 1, "10.0.0.1");
    await r.flush();
    r.seen("aaaaaaaaaaaa", 2, "10.0.0.1");
    await r.stop();
    assert.equal(batches.length, 2);
    assert.equal(r.pending, 0);
  });
});
