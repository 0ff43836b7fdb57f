import { parseList, Token, type BareItem, type Parameters } from 'structured-headers';
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
/** A structured field sent on several lines is one list (RFC 9651 §4.2). */
const joined = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value);

/**
 * Reads `RateLimit-Remaining`/`RateLimit-Reset`, `X-RateLimit-Remaining`/`X-RateLimit-Reset`, the
 * combined `RateLimit: limit=100, remaining=0, reset=30` form, and the structured fields of the
 * current IETF draft (`RateLimit: "default";r=0;t=30`, see `structuredRateLimit`). Reset may be
 * seconds from now or epoch seconds (values past 10^9). Returns undefined unless both a remaining
 * count and a reset are present and readable.
 */
export function parseRateLimitHeaders(headers: Headers, now: number = Date.now()): RateLimitInfo | undefined {
  let remaining = first(headers['ratelimit-remaining']) ?? first(headers['x-ratelimit-remaining']);
  let reset = first(headers['ratelimit-reset']) ?? first(headers['x-ratelimit-reset']);
  const combined = first(headers['ratelimit']);
  if (combined && (remaining === undefined || reset === undefined)) {
    if (remaining === undefined && reset === undefined) {
      const structured = structuredRateLimit(joined(headers['ratelimit'])!, joined(headers['ratelimit-policy']));
      if (structured !== undefined) return structured;
    }
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

/**
 * The draft's structured fields (draft-ietf-httpapi-ratelimit-headers-10): `RateLimit` lists each
 * policy's remaining quota `r` and seconds to its reset `t`; `RateLimit-Policy` lists each
 * policy's quota `q` and window `w` in seconds:
 *
 *     RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400
 *     RateLimit: "burst";r=0;t=30, "daily";r=250;t=3600
 *
 * The answer is the tightest policy: of those spent (r = 0), the one that resets last, else the one
 * with the fewest requests left. A policy without `t` resets within its window `w`, the longest it
 * can take. Undefined when the field is not such a list (a syntax error voids the whole field).
 */
function structuredRateLimit(field: string, policyField?: string): RateLimitInfo | undefined {
  const policies = readList(field);
  if (policies === undefined || !policies.some(({ params }) => params.has('r'))) return undefined;
  const windows = new Map<string, number>();
  for (const { name, params } of (policyField === undefined ? undefined : readList(policyField)) ?? []) {
    const window = nonNegative(params.get('w'));
    if (window !== undefined && !windows.has(name)) windows.set(name, window);
  }
  let tightest: RateLimitInfo | undefined;
  for (const { name, params } of policies) {
    const remaining = nonNegative(params.get('r'));
    const reset = params.has('t') ? nonNegative(params.get('t')) : windows.get(name);
    if (remaining === undefined || reset === undefined) continue;
    const info = { remaining, resetMs: Math.min(Math.ceil(reset * 1_000), MAX_RETRY_AFTER_MS) };
    if (tightest === undefined || tighter(info, tightest)) tightest = info;
  }
  return tightest;
}

function tighter(a: RateLimitInfo, b: RateLimitInfo): boolean {
  if (a.remaining <= 0 && b.remaining <= 0) return a.resetMs > b.resetMs;
  return a.remaining < b.remaining;
}

/** A structured List of named items (String or Token) with their parameters; undefined when it is not one. */
function readList(field: string): { name: string; params: Parameters }[] | undefined {
  try {
    return parseList(field).flatMap(([item, params]) =>
      typeof item === 'string' || item instanceof Token ? [{ name: String(item), params }] : [],
    );
  } catch {
    return undefined;
  }
}

/** A non-negative number (the draft says Integer; a Decimal is read as well). */
function nonNegative(value: BareItem | undefined): number | undefined {
  return typeof value === 'number' && value >= 0 && Number.isFinite(value) ? value : undefined;
}
