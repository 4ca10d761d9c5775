// h2load sends one request body per run, but it re-reads that body from its file (pread) for
// every request. The rotator rewrites the file in place every millisecond with the next body of
// the mix, all of one length, so one h2load run carries many tokens and the 90/10 mix. A request
// read while a rewrite is under way could see half of each body: such requests fail their
// checksum or route and show up as unexpected decisions in the server-side counts, which the
// bench reports.
import { closeSync, openSync, writeSync } from "node:fs";

export interface Rotation {
  stop(): void;
  /** Bodies written so far. */
  readonly written: number;
}

export function rotateBodies(file: string, bodies: readonly Buffer[], everyMs = 1): Rotation {
  const length = bodies[0]?.length ?? 0;
  if (bodies.some((b) => b.length !== length)) throw new Error("bodies differ in length");
  const fd = openSync(file, "r+");
  let next = 0;
  let written = 0;
  const timer = setInterval(() => {
    const body = bodies[next % bodies.length] as Buffer;
    writeSync(fd, body, 0, body.length, 0);
    next++;
    written++;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      closeSync(fd);
    },
    get written() {
      return written;
    },
  };
}
