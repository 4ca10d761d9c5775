// The embedded store's audit journal: append-only JSON lines in audit.jsonl. When the file holds
// `maxEvents` lines it becomes audit.jsonl.1 (replacing the older one): the newest maxEvents
// events (and at most twice that) are always kept, and a reader sees them in order.
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { decodeEvent, encodeEvent, matchesEvent } from "./event-json.ts";
import type { EventFilter, LifecycleEvent } from "./token-store.ts";

export interface FileAuditJournal {
  append(event: LifecycleEvent): Promise<void>;
  read(filter?: EventFilter): Promise<LifecycleEvent[]>;
}

async function readLines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, "utf8")).split("\n").filter((l) => l !== "");
  } catch (err) {
    if (err instanceof Error && "code" in err && err.code === "ENOENT") return [];
    throw err;
  }
}

export function fileAuditJournal(opts: {
  dir: string;
  maxEvents: number;
  /** Serialises writers across processes (the store's lock file). */
  withLock: <T>(work: () => Promise<T>) => Promise<T>;
}): FileAuditJournal {
  const current = join(opts.dir, "audit.jsonl");
  const previous = `${current}.1`;

  return {
    append: (event) =>
      opts.withLock(async () => {
        if ((await readLines(current)).length >= opts.maxEvents) await rename(current, previous);
        const handle = await open(current, "a", 0o600);
        try {
          await handle.appendFile(encodeEvent(event) + "\n");
          await handle.sync();
        } finally {
          await handle.close();
        }
      }),

    async read(filter) {
      const lines = [...(await readLines(previous)), ...(await readLines(current))];
      const events: LifecycleEvent[] = [];
      for (const line of lines) {
        const event = decodeEvent(line);
        if (event !== undefined && matchesEvent(event, filter)) events.push(event);
      }
      return events;
    },
  };
}
