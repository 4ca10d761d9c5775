// Exponential backoff with full jitter for retries against the Kubernetes API: the delay before
// attempt n is a random point in [base·2ⁿ/2, base·2ⁿ], capped, so replicas that lost the API
// server together do not come back in lockstep. Pure: the random source is passed in.

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 10_000 };

/** Delay before retry number `attempt` (0 = first retry). */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Counts consecutive failures; a success resets it. */
export class Backoff {
  readonly #policy: BackoffPolicy;
  readonly #random: () => number;
  #attempt = 0;

  constructor(policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random) {
    this.#policy = policy;
    this.#random = random;
  }

  next(): number {
    return backoffDelay(this.#policy, this.#attempt++, this.#random);
  }

  reset(): void {
    this.#attempt = 0;
  }

  get failures(): number {
    return this.#attempt;
  }
}
