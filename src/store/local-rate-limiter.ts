// In-process GCRA for the embedded store: the same arithmetic as the Redis script, one TAT per
// key in a Map. Keys whose TAT has passed mean "no debt" and are swept now and then.
import { gcraParams, gcraStep, type RateOutcome } from "../domain/rate-limit.ts";
import type { RateLimit } from "../domain/scope-types.ts";

const SWEEP_EVERY = 1024;

export interface LocalRateLimiter {
  consume(key: string, limit: RateLimit): RateOutcome;
}

export function createLocalRateLimiter(clock: () => number): LocalRateLimiter {
  const tats = new Map<string, number>();
  let calls = 0;
  function sweep(now: number): void {
    for (const [key, tat] of tats) if (tat <= now) tats.delete(key);
  }
  return {
    consume(key, limit) {
      const now = clock();
      if (++calls % SWEEP_EVERY === 0) sweep(now);
      const step = gcraStep(tats.get(key), now, gcraParams(limit));
      if (step.allowed && step.tat !== undefined) tats.set(key, step.tat);
      return { allowed: step.allowed, retryAfterMs: step.retryAfterMs };
    },
  };
}
