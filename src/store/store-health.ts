// Background readiness probe of the token store: /readyz and gRPC health never wait on Redis.
// Probes often while the store is down, so readiness returns soon after it does.
import type { TokenStore } from "./token-store.ts";

export class StoreHealth {
  healthy = false;
  readonly #store: TokenStore;
  readonly #healthyIntervalMs: number;
  readonly #unhealthyIntervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #listeners: (() => void)[] = [];

  constructor(store: TokenStore, opts: { healthyIntervalMs: number; unhealthyIntervalMs: number }) {
    this.#store = store;
    this.#healthyIntervalMs = opts.healthyIntervalMs;
    this.#unhealthyIntervalMs = opts.unhealthyIntervalMs;
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async start(): Promise<void> {
    await this.#probe();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #probe(): Promise<void> {
    let healthy: boolean;
    try {
      await this.#store.ping();
      healthy = true;
    } catch {
      healthy = false;
    }
    if (healthy !== this.healthy) {
      this.healthy = healthy;
      for (const listener of this.#listeners) listener();
    }
    if (this.#stopped) return;
    const next = healthy ? this.#healthyIntervalMs : this.#unhealthyIntervalMs;
    this.#timer = setTimeout(() => void this.#probe(), next);
    this.#timer.unref();
  }
}
