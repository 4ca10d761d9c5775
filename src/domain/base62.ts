export const BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const BASE62_RE = /^[0-9A-Za-z]*$/;

export function isBase62(s: string): boolean {
  return BASE62_RE.test(s);
}

/** Most significant digit first, left-padded with "0" to `width`. */
export function encodeBase62(n: number, width: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot encode ${n} in base62`);
  let out = "";
  let rest = n;
  do {
    out = BASE62_ALPHABET.charAt(rest % 62) + out;
    rest = Math.floor(rest / 62);
  } while (rest > 0);
  if (out.length > width) throw new RangeError(`${n} does not fit in ${width} base62 digits`);
  return out.padStart(width, "0");
}

/** Uniform base62 string from a byte source (rejection sampling, no modulo bias). */
export function randomBase62(length: number, randomBytes: (n: number) => Uint8Array): string {
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      // 248 = 62 * 4: bytes at or above it would bias the first characters.
      if (b < 248) out += BASE62_ALPHABET.charAt(b % 62);
      if (out.length === length) break;
    }
  }
  return out;
}
