// `--scopes PATH`: TokenScope manifests from a YAML/JSON file or a folder, loaded into the
// ScopeIndex at start and reloaded on change, without ever throwing out of a watcher callback.
import { watch, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { ScopeFileLoader, type ScopeLoaderOptions } from "./scope-loader.ts";

export type { ScopeLog } from "./scope-loader.ts";

export interface ScopeFileOptions extends ScopeLoaderOptions {
  /** Quiet time after the last change before reloading; editors write in several steps. */
  readonly debounceMs?: number;
}

export interface ScopeFileWatcher {
  close(): void;
  reload(): Promise<void>;
}

const REWATCH_MS = 1000;

/** Debounced reloads on change; reloads run one at a time and never reject. */
class ScopeFileWatch implements ScopeFileWatcher {
  readonly #opts: ScopeFileOptions;
  readonly #root: string;
  readonly #loader: ScopeFileLoader;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #rewatch: NodeJS.Timeout | undefined;
  #queue: Promise<void> = Promise.resolve();
  #queued: Promise<void> | undefined;
  #closed = false;

  constructor(opts: ScopeFileOptions, root: string, loader: ScopeFileLoader) {
    this.#opts = opts;
    this.#root = root;
    this.#loader = loader;
  }

  reload(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    // A change during a load queues one more load; more changes join that queued one.
    this.#queued ??= this.#queue.then(() => {
      this.#queued = undefined;
      return this.#loadSafely();
    });
    this.#queue = this.#queued;
    return this.#queued;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#rewatch);
    this.#watcher?.close();
  }

  async #loadSafely(): Promise<void> {
    if (this.#closed) return;
    try {
      const info = await stat(this.#root).catch(() => undefined);
      if (!info) {
        this.#opts.log("error", "scope path is gone; keeping the last loaded scopes", {
          path: this.#opts.path,
        });
        this.#watchWhenBack();
        return;
      }
      await this.#loader.load(this.#root, info.isDirectory());
    } catch (err) {
      this.#opts.log("error", "scope reload failed; keeping the last loaded scopes", {
        path: this.#opts.path,
        error: String(err),
      });
    }
  }

  #changed(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload(), this.#opts.debounceMs ?? 200);
    this.#debounce.unref();
  }

  /** A folder is watched recursively. A file is watched through its folder, so an editor's
   * save-by-rename (and a ConfigMap's "..data" symlink swap) is still seen. */
  watch(isDir: boolean): void {
    const name = basename(this.#root);
    try {
      const target = isDir ? this.#root : dirname(this.#root);
      // Not persistent: the servers keep the process alive, a CLI command should not wait on this.
      const watcher = watch(target, { recursive: isDir, persistent: false }, (_event, file) => {
        if (isDir || file === null || file === name || file.startsWith("..")) this.#changed();
      });
      watcher.on("error", (err) => {
        this.#opts.log("warn", "scope watch failed; retrying", {
          path: this.#opts.path,
          error: String(err),
        });
        this.#watchWhenBack();
      });
      this.#watcher = watcher;
    } catch (err) {
      this.#opts.log("warn", "cannot watch scope path; retrying", {
        path: this.#opts.path,
        error: String(err),
      });
      this.#watchWhenBack();
    }
  }

  /** After the path vanished or the watch broke: watch again once the path is back, then reload. */
  #watchWhenBack(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#closed || this.#rewatch) return;
    this.#rewatch = setInterval(() => {
      stat(this.#root).then(
        (info) => {
          if (this.#closed || !this.#rewatch) return;
          clearInterval(this.#rewatch);
          this.#rewatch = undefined;
          this.watch(info.isDirectory());
          void this.reload();
        },
        () => undefined, // still gone
      );
    }, REWATCH_MS);
    this.#rewatch.unref();
  }
}

export async function watchScopeFiles(opts: ScopeFileOptions): Promise<ScopeFileWatcher> {
  const root = resolve(opts.path);
  const info = await stat(root).catch(() => undefined);
  if (!info) throw new Error(`scope path ${opts.path} does not exist`);
  if (!info.isFile() && !info.isDirectory()) {
    throw new Error(`scope path ${opts.path} is neither a file nor a folder`);
  }
  const loader = new ScopeFileLoader(opts);
  const watcher = new ScopeFileWatch(opts, root, loader);
  // Watch before the first load, so a change made while it runs is not missed.
  watcher.watch(info.isDirectory());
  try {
    await loader.load(root, info.isDirectory());
  } catch (err) {
    watcher.close();
    throw err;
  }
  return watcher;
}
