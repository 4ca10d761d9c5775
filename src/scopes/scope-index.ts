// The in-memory TokenScope index: read on every Check, written only by the loaders. A load
// replaces the whole map at once, so a Check sees either the old set or the new one, never a mix.
import type { ScopeEntry } from "../domain/scope-types.ts";

export class ScopeIndex {
  #entries: ReadonlyMap<string, ScopeEntry> = new Map();
  #namespaces: ReadonlySet<string> = new Set();
  #loaded = false;

  get(key: string): ScopeEntry | undefined {
    return this.#entries.get(key);
  }

  /** The first entry wins for a key given twice; loaders report duplicates before this. */
  replaceAll(entries: readonly ScopeEntry[]): void {
    const next = new Map<string, ScopeEntry>();
    for (const entry of entries) {
      if (!next.has(entry.key)) next.set(entry.key, entry);
    }
    this.#entries = next;
    this.#namespaces = new Set([...next.keys()].map((key) => key.slice(0, key.indexOf("/"))));
    this.#loaded = true;
  }

  /** True when some TokenScope (ready or not) lives in the namespace. */
  hasNamespace(namespace: string): boolean {
    return this.#namespaces.has(namespace);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** True once a first load has completed: until then every scope would read as not found. */
  get loaded(): boolean {
    return this.#loaded;
  }

  list(): ScopeEntry[] {
    return [...this.#entries.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
