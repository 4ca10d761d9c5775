// h2load sends one request body per run, but it re-reads that body from its file (pread) for
// every request. The rotator rewrites the file in place with the next body of the mix, all of one
// length, so one h2load run carries many tokens and the 90/10 mix. It runs on a thread of its
// own that sleeps `everyUs` microseconds between bodies (Atomics.wait, no busy loop), so its
// pace does not depend on how busy the bench's main thread is; the bench prints the pace reached.
//
// The pace sets an upper bound on how many tokens per second the server sees, not the number
// itself. h2load refills its streams in batches: each batch of responses it reads is answered by
// as many new requests, all read from the file within microseconds, so all with one token. At
// c=16 the server saw about 330 distinct tokens per second at any pace from 1 ms down to 50 µs
// (measured by counting store reads), each in a burst of about 12 requests. With 10,000 tokens
// that is a token every 30 s or more, longer than any cache TTL: each burst reads Redis once and
// the rest of the burst waits for that read. A faster pace only costs the bench's CPU
// (4% of a core at 1 ms, 12% at 100 µs, 18% at 50 µs).
//
// A request read while a rewrite is under way could see half of each body: such requests fail
// their checksum or route and show up as unexpected decisions in the server-side counts, which
// the bench reports.
import { Worker } from "node:worker_threads";

export interface Rotation {
  stop(): Promise<void>;
  /** Bodies written so far. */
  readonly written: number;
}

// Slots of the shared Int32Array: [0] stop flag, [1] bodies written (wraps at 2^31).
const STOP = 0;
const WRITTEN = 1;

const THREAD = `
const { workerData } = require("node:worker_threads");
const { openSync, writeSync, closeSync } = require("node:fs");
const { file, bodies, everyUs, shared } = workerData;
const state = new Int32Array(shared);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const fd = openSync(file, "r+");
let next = 0;
while (Atomics.load(state, ${STOP}) === 0) {
  const body = bodies[next];
  writeSync(fd, body, 0, body.length, 0);
  next = (next + 1) % bodies.length;
  Atomics.add(state, ${WRITTEN}, 1);
  Atomics.wait(sleeper, 0, 0, everyUs / 1000);
}
closeSync(fd);
`;

export function rotateBodies(file: string, bodies: readonly Buffer[], everyUs = 1000): Rotation {
  const length = bodies[0]?.length ?? 0;
  if (bodies.some((b) => b.length !== length)) throw new Error("bodies differ in length");
  if (!(everyUs > 0)) throw new Error("rotation period must be positive");
  const shared = new SharedArrayBuffer(8);
  const state = new Int32Array(shared);
  const worker = new Worker(THREAD, {
    eval: true,
    workerData: { file, bodies: bodies.map((b) => new Uint8Array(b)), everyUs, shared },
  });
  const exited = new Promise<void>((resolve, reject) => {
    worker.once("exit", () => resolve());
    worker.once("error", reject);
  });
  // A thread that failed is reported by stop(), not as an unhandled rejection before it.
  exited.catch(() => undefined);
  return {
    async stop() {
      Atomics.store(state, STOP, 1);
      await exited;
    },
    get written() {
      return Atomics.load(state, WRITTEN);
    },
  };
}
