// V8 settings `serve` makes for itself. Allocation-site pretenuring: when most objects made at one
// allocation site survive a few young-generation collections, V8 starts allocating that site's
// objects straight in the old generation. A Check's objects live for microseconds, but while a
// burst of checks waits on one Redis read (a cold token) they survive long enough to trip it; from
// then on every Check's request view, promises and decision land in the old generation, and die
// there: a full mark-compact about every second and ~20 µs of GC per Check at 11,000 checks/s
// (test/bench, pinned to one core, c=16: 14,200–15,100 against 10,900–11,000 checks/s, V8's
// helper threads 2–9 against 17–24 µs per Check). Turned off unless the operator set it.
import { setFlagsFromString } from "node:v8";

/**
 * Whether the operator set a V8 flag themselves, as a node flag or in NODE_OPTIONS: `flag` is
 * matched against both, dashes standing for underscores too (Node takes either spelling).
 */
export function operatorSet(
  flag: RegExp,
  execArgv: readonly string[],
  nodeOptions: string,
): boolean {
  return flag.test([...execArgv, nodeOptions].join(" ").replaceAll("_", "-"));
}

/** Turns pretenuring off unless the node flags or NODE_OPTIONS name it; true if it did. */
export function pretenuringOff(execArgv: readonly string[], nodeOptions: string): boolean {
  if (operatorSet(/--(no-)?allocation-site-pretenuring\b/, execArgv, nodeOptions)) return false;
  setFlagsFromString("--no-allocation-site-pretenuring");
  return true;
}
