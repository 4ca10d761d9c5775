// Loads TokenScope manifests from a file or folder into the ScopeIndex. Every load rebuilds the
// whole set, so a deleted file drops its scopes; a file that fails to parse keeps its previous
// scopes rather than revoking them all mid-edit.
import { readdir, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { compileTokenScope, validateTokenScope } from "../domain/scope.ts";
import type { ScopeEntry, ScopeValidationOptions } from "../domain/scope-types.ts";
import { foreignKind, readManifestFile, type Manifest } from "./manifest-file.ts";
import type { ScopeIndex } from "./scope-index.ts";

export type ScopeLog = (
  level: "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

export interface ScopeLoaderOptions {
  /** As given by the user, for logs. */
  readonly path: string;
  readonly index: ScopeIndex;
  readonly validation: ScopeValidationOptions;
  readonly log: ScopeLog;
}

const EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

/** Manifest files under a folder, sorted; dot-paths skipped (editor swap files, and the
 * "..data" copies of a mounted ConfigMap, whose top-level symlinks are what we read). */
async function listFiles(root: string, isDir: boolean): Promise<string[]> {
  if (!isDir) return [root];
  const names = await readdir(root, { recursive: true });
  const candidates = names
    .filter((n) => EXTENSIONS.has(extname(n).toLowerCase()))
    .filter((n) => !n.split(/[\\/]/).some((part) => part.startsWith(".")))
    .map((n) => join(root, n))
    .sort();
  const isFile = await Promise.all(
    candidates.map((f) =>
      stat(f).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  );
  return candidates.filter((_, i) => isFile[i]);
}

export class ScopeFileLoader {
  readonly #opts: ScopeLoaderOptions;
  /** Last good parse of each file, reused while the file fails to parse (a half-saved edit). */
  #lastGood = new Map<string, readonly Manifest[]>();

  constructor(opts: ScopeLoaderOptions) {
    this.#opts = opts;
  }

  async load(root: string, isDir: boolean): Promise<void> {
    const files = await listFiles(root, isDir);
    const good = new Map<string, readonly Manifest[]>();
    for (const file of files) {
      const read = await readManifestFile(file);
      if ("error" in read) {
        const kept = this.#lastGood.get(file);
        this.#opts.log("error", "cannot read scope file; keeping its previous scopes", {
          file,
          line: read.line,
          error: read.error,
          kept: kept?.length ?? 0,
        });
        if (kept) good.set(file, kept);
      } else {
        good.set(file, read.manifests);
      }
    }
    this.#lastGood = good;
    this.#opts.index.replaceAll(this.#compileAll(good));
  }

  #compileAll(files: ReadonlyMap<string, readonly Manifest[]>): ScopeEntry[] {
    const { log, validation } = this.#opts;
    const firstFile = new Map<string, string>();
    const entries: ScopeEntry[] = [];
    for (const [file, manifests] of files) {
      for (const { label, value } of manifests) {
        const foreign = foreignKind(value);
        if (foreign !== undefined) {
          log("info", "ignoring a document that is not a TokenScope", {
            file,
            object: label,
            kind: foreign,
          });
          continue;
        }
        const entry = compileTokenScope(value, validation);
        const object = entry.ready || (entry.namespace && entry.name) ? entry.key : label;
        this.#report(file, object, entry, value);
        if (object === label) continue; // no namespace/name: nothing a token could refer to
        const first = firstFile.get(entry.key);
        if (first !== undefined) {
          log("warn", "duplicate TokenScope ignored", { file, object, firstFile: first });
          continue;
        }
        firstFile.set(entry.key, file);
        entries.push(entry);
      }
    }
    const ready = entries.filter((e) => e.ready).length;
    log("info", "scopes loaded", {
      path: this.#opts.path,
      ready,
      notReady: entries.length - ready,
    });
    return entries;
  }

  #report(file: string, object: string, entry: ScopeEntry, value: unknown): void {
    const { log, validation } = this.#opts;
    if (!entry.ready) {
      for (const { field, message } of entry.problems) {
        log("warn", "invalid TokenScope, not ready", { file, object, field, message });
      }
      return;
    }
    for (const warning of validateTokenScope(value, validation).warnings) {
      log("info", "TokenScope warning", { file, object, warning });
    }
  }
}
