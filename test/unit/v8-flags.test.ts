// serve turns V8's allocation-site pretenuring off for itself (src/v8-flags.ts) unless the
// operator named the flag; what it buys is measured by the bench (README, Performance).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pretenuringOff } from "../../src/v8-flags.ts";

describe("V8 pretenuring", () => {
  it("is turned off when neither the node flags nor NODE_OPTIONS name it", () => {
    assert.equal(pretenuringOff([], ""), true);
    assert.equal(pretenuringOff(["--max-semi-space-size=16"], "--max-old-space-size=256"), true);
  });

  const operatorChoices: [string, readonly string[], string][] = [
    ["on, as a node flag", ["--allocation-site-pretenuring"], ""],
    ["off, as a node flag", ["--no-allocation-site-pretenuring"], ""],
    ["on, spelled with underscores", ["--allocation_site_pretenuring"], ""],
    ["in NODE_OPTIONS", [], "--max-semi-space-size=16 --no-allocation-site-pretenuring"],
  ];
  for (const [name, execArgv, nodeOptions] of operatorChoices) {
    it(`is left as the operator set it: ${name}`, () => {
      assert.equal(pretenuringOff(execArgv, nodeOptions), false);
    });
  }
});
