// A cached record's times kept as small offsets from createdAt must read back exactly.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AbsoluteTime, timeAt, timeFrom } from "../../src/store/record-times.ts";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0, 123);
const DAY = 86_400_000;

describe("record times kept beside createdAt", () => {
  const rows: [string, number, number, "offset" | "absolute"][] = [
    ["the same instant", T0, T0, "offset"],
    ["a day later", T0, T0 + DAY, "offset"],
    ["a millisecond earlier", T0, T0 - 1, "offset"],
    ["12 days and a millisecond later", T0, T0 + 12 * DAY + 1, "offset"],
    ["90 days later, in whole seconds", T0, T0 + 90 * DAY, "offset"],
    ["ten years earlier, in whole seconds", T0, T0 - 3650 * DAY, "offset"],
    ["90 days and a millisecond later", T0, T0 + 90 * DAY + 1, "absolute"],
    ["a fraction of a millisecond later", T0, T0 + 0.5, "absolute"],
    ["from a fractional createdAt", T0 + 0.25, T0 + DAY, "absolute"],
    ["far beyond any offset", 0, 8.64e15, "absolute"],
    ["negative zero", 0, -0, "absolute"],
    ["beyond safe integers, exactly 4096 apart", 2 ** 60, 2 ** 60 + 4096, "offset"],
  ];
  for (const [name, base, t, form] of rows) {
    it(`${name}: read back exactly, as ${form === "offset" ? "a small integer" : "itself"}`, () => {
      const kept = timeFrom(base, t);
      assert.ok(Object.is(timeAt(base, kept), t), `${t} came back as ${timeAt(base, kept)}`);
      if (form === "offset") {
        assert.equal(typeof kept, "number");
        assert.ok(Number.isInteger(kept) && Math.abs(kept as number) < 2 ** 31);
      } else {
        assert.ok(kept instanceof AbsoluteTime);
      }
    });
  }
});
