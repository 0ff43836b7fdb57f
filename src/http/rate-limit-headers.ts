import { MAX_RETRY_AFTER_MS } from './retry-after.js';

/** What a response's rate-limit headers say, when they say the quota is spent. */
export interface RateLimitInfo {
  remaining: number;
  /** Milliseconds from now until the quota resets. */
  resetMs: number;
}

type Headers = Record<string, string | string[] | undefined>;

const DECIMAL = /^\d+(?:\.\d+)?$/;

const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/**
 * Reads `RateLimit-Remaining`/`RateLimit-Reset`, `X-RateLimit-Remaining`/`X-RateLimit-Reset` and
 * the combined `RateLimit: limit=100, remaining=0, reset=30` form. Reset may be seconds from now
 * or epoch seconds (values past 10^9). Returns undefined unless both are present and readable.
 */
export function parseRateLimitHeaders(headers: Headers, now: number = Date.now()): RateLimitInfo | undefined {
  let remaining = first(headers['ratelimit-remaining']) ?? first(headers['x-ratelimit-remaining']);
  let reset = first(headers['ratelimit-reset']) ?? first(headers['x-ratelimit-reset']);
  const combined = first(headers['ratelimit']);
  if (combined && (remaining === undefined || reset === undefined)) {
    remaining ??= /(?:^|[,;\s])remaining=(\d+)/i.exec(combined)?.[1];
    reset ??= /(?:^|[,;\s])reset=(\d+(?:\.\d+)?)/i.exec(combined)?.[1];
  }
  if (remaining === undefined || reset === undefined) return undefined;
  // Only plain decimal numbers: Number('') and Number('  ') are 0, which would read an empty header as "quota spent".
  if (!DECIMAL.test(remaining.trim()) || !DECIMAL.test(reset.trim())) return undefined;
  const left = Number(remaining.trim());
  const at = Number(reset.trim());
  if (!Number.isFinite(left) || !Number.isFinite(at)) return undefined;
  const resetMs = at > 1e9 ? Math.max(0, at * 1_000 - now) : at * 1_000;
  return { remaining: left, resetMs: Math.min(Math.ceil(resetMs), MAX_RETRY_AFTER_MS) };
}
