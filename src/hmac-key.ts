// The installation's HMAC key. It never leaves the server side and is never logged.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const MIN_KEY_BYTES = 32;

export class KeyError extends Error {
  override readonly name = "KeyError";
}

export function readHmacKey(file: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new KeyError(
      `cannot read the HMAC key file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
    );
  }
  // A trailing newline from `echo` or a Secret mount is not part of the key.
  const key = raw.subarray(0, raw.length - (raw.at(-1) === 0x0a ? 1 : 0));
  if (key.length < MIN_KEY_BYTES) {
    throw new KeyError(
      `the HMAC key in ${file} is ${key.length} bytes; at least ${MIN_KEY_BYTES} are required`,
    );
  }
  return key;
}

/** Embedded mode only: a per-checkout key, created on first use, readable by its owner alone. */
export function readOrCreateHmacKey(file: string): { key: Uint8Array; created: boolean } {
  try {
    return { key: readHmacKey(file), created: false };
  } catch (err) {
    if (!(err instanceof KeyError) || !err.message.includes("ENOENT")) throw err;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
  return { key: readHmacKey(file), created: true };
}
