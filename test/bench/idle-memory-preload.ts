// Preloaded into `serve` by test/bench/idle-memory.ts (--import, with --expose-gc): at a fixed
// time after start, writes the process's memory before and after a full GC to a JSON file.
import { writeFileSync } from "node:fs";

const file = process.env.TOKENSCOPE_IDLE_MEMORY_FILE;
const afterMs = Number(process.env.TOKENSCOPE_IDLE_MEMORY_AFTER_MS ?? 3000);
const gc = (globalThis as { gc?: () => void }).gc;
if (file !== undefined && gc !== undefined) {
  setTimeout(() => {
    const before = process.memoryUsage();
    gc();
    const after = process.memoryUsage();
    writeFileSync(file, JSON.stringify({ before, after }));
  }, afterMs).unref();
}
