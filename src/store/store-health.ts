// Background readiness probe of the token store: /readyz and gRPC health never wait on Redis.
import type { TokenStore } from "./token-store.ts";

export class StoreHealth {
  healthy = false;
  readonly #store: TokenStore;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #listeners: (() => void)[] = [];

  constructor(store: TokenStore, opts: { intervalMs: number }) {
    this.#store = store;
    this.#intervalMs = opts.intervalMs;
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async start(): Promise<void> {
    await this.#probe();
    this.#timer = setInterval(() => void this.#probe(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
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
      for (const l of this.#listeners) l();
    }
  }
}
