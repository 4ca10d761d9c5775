// tokenscope_tokens{scope,state} and tokenscope_scopes{namespace,ready} (SPEC §6). Tokens are
// counted in the background from the store's own listing (Redis: SSCAN over the id index, never
// KEYS), so a scrape only reads numbers already in memory. Scopes come from the in-memory index.
import { Gauge, type Registry } from "prom-client";
import { inventoryCounter, INVENTORY_STATES } from "../domain/token-inventory.ts";
import type { ScopeIndex } from "../scopes/scope-index.ts";
import type { TokenStore } from "../store/token-store.ts";
import type { Logger } from "./logger.ts";

export interface InventoryOptions {
  readonly registry: Registry;
  readonly store: Pick<TokenStore, "forEachRecord">;
  readonly scopes: ScopeIndex;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly intervalMs: number;
  readonly expiringSoonMs: number;
}

export interface InventoryMetrics {
  /** Counts once now (awaitable), then every intervalMs until stop(). */
  start(): Promise<void>;
  /** One count; rejects when the store cannot list. */
  refresh(): Promise<void>;
  stop(): void;
}

export function createInventoryMetrics(opts: InventoryOptions): InventoryMetrics {
  const tokens = new Gauge({
    name: "tokenscope_tokens",
    help: "Retained tokens by scope and state (active, expiring_soon, expired, revoked).",
    labelNames: ["scope", "state"] as const,
    registers: [opts.registry],
  });
  const lastSuccess = new Gauge({
    name: "tokenscope_token_inventory_last_success_timestamp_seconds",
    help: "When tokenscope_tokens was last counted from the store.",
    registers: [opts.registry],
  });
  new Gauge({
    name: "tokenscope_scopes",
    help: "Loaded TokenScopes by namespace and readiness.",
    labelNames: ["namespace", "ready"] as const,
    registers: [opts.registry],
    collect() {
      this.reset();
      for (const entry of opts.scopes.list()) {
        const namespace = entry.key.split("/", 1)[0] ?? "";
        this.inc({ namespace, ready: String(!entry.ready) }, 0);
        this.inc({ namespace, ready: String(entry.ready) });
      }
    },
  });

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function refresh(): Promise<void> {
    const counter = inventoryCounter(
      opts.scopes.list().map((e) => e.key),
      opts.clock(),
      opts.expiringSoonMs,
    );
    // Page by page: only the counts are kept, never every record at once.
    await opts.store.forEachRecord((record) => counter.add(record));
    const counts = counter.counts;
    // Reset and refill in one synchronous step: a scrape never sees a half-filled gauge.
    tokens.reset();
    for (const [scope, row] of counts) {
      for (const state of INVENTORY_STATES) tokens.set({ scope, state }, row[state]);
    }
    lastSuccess.set(opts.clock() / 1000);
  }

  async function loop(): Promise<void> {
    try {
      await refresh();
    } catch (err) {
      // The store reports its own errors; the gauge keeps its last counts (see the timestamp).
      opts.logger.log("warn", "token inventory not counted", { err: String(err) });
    }
    if (stopped) return;
    timer = setTimeout(() => void loop(), opts.intervalMs);
    timer.unref();
  }

  return {
    start: loop,
    refresh,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
