// How long to wait before retrying a failed delivery: exponential, capped, with jitter so that the
// deliveries queued while a receiver was down do not all return at the same instant.

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** Delay after the `failures`-th failed attempt (1 = first): base·2^(failures−1), capped, minus up to 25 %. */
export function retryDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponential = policy.baseMs * 2 ** Math.max(0, failures - 1);
  const capped = Math.min(policy.maxMs, exponential);
  return Math.round(capped * (0.75 + 0.25 * random()));
}
