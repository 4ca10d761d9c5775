// The TokenScopes last seen from the API server, compiled with the same validation as
// `--scopes PATH`, and published to the ScopeIndex as one whole set after every change.
import { compileTokenScope } from "../domain/scope.ts";
import type { ScopeEntry, ScopeValidationOptions } from "../domain/scope-types.ts";
import type { ScopeIndex } from "../scopes/scope-index.ts";
import type { ScopeObject } from "./watch-events.ts";

interface Cached {
  readonly object: ScopeObject;
  readonly entry: ScopeEntry;
}

export class KubeScopeCache {
  readonly #index: ScopeIndex;
  readonly #validation: ScopeValidationOptions;
  readonly #onChange: (object: ScopeObject, entry: ScopeEntry) => void;
  #cached = new Map<string, Cached>();

  constructor(opts: {
    index: ScopeIndex;
    validation: ScopeValidationOptions;
    /** Called for every object that arrived (new or changed); must not throw. */
    onChange: (object: ScopeObject, entry: ScopeEntry) => void;
  }) {
    this.#index = opts.index;
    this.#validation = opts.validation;
    this.#onChange = opts.onChange;
  }

  /** The result of a (re)list: objects not in it are gone. */
  replaceAll(objects: readonly ScopeObject[]): void {
    const next = new Map<string, Cached>();
    const arrived: Cached[] = [];
    for (const object of objects) {
      const cached = this.#compiled(object);
      next.set(object.key, cached);
      arrived.push(cached);
    }
    this.#cached = next;
    this.#publish();
    for (const { object, entry } of arrived) this.#onChange(object, entry);
  }

  upsert(object: ScopeObject): void {
    const cached = this.#compiled(object);
    this.#cached.set(object.key, cached);
    this.#publish();
    this.#onChange(object, cached.entry);
  }

  delete(key: string): void {
    if (this.#cached.delete(key)) this.#publish();
  }

  /** The latest object seen under key, with its compiled entry. */
  get(key: string): Cached | undefined {
    return this.#cached.get(key);
  }

  get size(): number {
    return this.#cached.size;
  }

  /** Same resourceVersion, same object: skip compiling it again (a relist resends everything). */
  #compiled(object: ScopeObject): Cached {
    const previous = this.#cached.get(object.key);
    if (previous?.object.resourceVersion === object.resourceVersion) return previous;
    return { object, entry: compileTokenScope(object.raw, this.#validation) };
  }

  #publish(): void {
    this.#index.replaceAll([...this.#cached.values()].map((c) => c.entry));
  }
}
