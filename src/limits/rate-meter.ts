/**
 * This process's request starts per key over the last ~2 s, cheaply: two one-second buckets per
 * key. Used to learn a starting rate for a key that has no configured one when it first sees a 429.
 */
export interface RateMeter {
  count(keys: readonly string[]): void;
  /** Starts per second, averaged over the current and previous second. */
  rate(key: string): number;
}

export function createRateMeter(now: () => number = Date.now): RateMeter {
  const buckets = new Map<string, { second: number; current: number; previous: number }>();

  function roll(key: string, second: number) {
    let bucket = buckets.get(key);
    if (!bucket) {
      bucket = { second, current: 0, previous: 0 };
      buckets.set(key, bucket);
    } else if (bucket.second !== second) {
      bucket.previous = second - bucket.second === 1 ? bucket.current : 0;
      bucket.current = 0;
      bucket.second = second;
    }
    return bucket;
  }

  return {
    count(keys) {
      const second = Math.floor(now() / 1_000);
      for (const key of keys) roll(key, second).current += 1;
    },
    rate(key) {
      const t = now();
      const bucket = roll(key, Math.floor(t / 1_000));
      const intoSecond = (t % 1_000) / 1_000;
      return (bucket.previous + bucket.current) / (1 + intoSecond);
    },
  };
}
