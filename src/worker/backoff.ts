import type { Operation } from '../operation/schema.js';

/**
 * Exponential backoff with full jitter: a delay drawn uniformly from [0, min(maxDelay, base·2^(n-1))]
 * for the n-th retry. Full jitter spreads a fleet's retries so they do not arrive together.
 * A `Retry-After` from the target is a floor: the next attempt never starts before it.
 */
export function backoffDelay(
  retry: Operation['retry'],
  failedAttempt: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(failedAttempt - 1, 0), 40);
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** exponent);
  const jittered = Math.floor(random() * (ceiling + 1));
  return Math.max(jittered, retryAfterMs ?? 0);
}
