// A cached record's notBefore and expiresAt, as small integers where that is exact.
//
// Epoch milliseconds are beyond V8's small integers (31 bits and a sign), so each time kept as a
// number field is a pointer to a 16-byte heap number. Taken from the record's createdAt instead,
// a time usually fits: notBefore is most often createdAt itself, and expiresAt createdAt plus a
// TTL in whole seconds. The offset is kept in a small integer whose low bit says its unit
// (0: milliseconds, 1: seconds); anything else is kept as it was, in an AbsoluteTime.

/** A time that is no exact small offset from createdAt (rare): kept as the number it was. */
export class AbsoluteTime {
  readonly at: number;
  constructor(at: number) {
    this.at = at;
  }
}

export type RecordTime = number | AbsoluteTime;

/** Largest magnitude of an offset: shifted left by one, it stays a small integer. */
const MAX_OFFSET = 2 ** 30 - 1;

/** `t` as kept beside `base` (createdAt); timeAt(base, timeFrom(base, t)) is `t`, exactly. */
export function timeFrom(base: number, t: number): RecordTime {
  const ms = t - base;
  // `| 0`: the same value, as a small integer even where V8 computed it as a heap number (its
  // interpreter does, for a difference of two heap numbers).
  if (Number.isInteger(ms) && Math.abs(ms) <= MAX_OFFSET && Object.is(base + ms, t)) {
    return (ms * 2) | 0;
  }
  const s = ms / 1000;
  if (Number.isInteger(s) && Math.abs(s) <= MAX_OFFSET && Object.is(base + s * 1000, t)) {
    return (s * 2 + 1) | 0;
  }
  return new AbsoluteTime(t);
}

export function timeAt(base: number, kept: RecordTime): number {
  if (typeof kept !== "number") return kept.at;
  // kept is an int32 here: `>> 1` is its offset, sign included.
  return (kept & 1) === 0 ? base + (kept >> 1) : base + (kept >> 1) * 1000;
}
