import { describe, expect, it } from 'vitest';
import { parseRateLimitHeaders } from '../../src/http/rate-limit-headers.js';
import { MAX_RETRY_AFTER_MS } from '../../src/http/retry-after.js';

/** A fixed "now" on a whole second, so epoch-second resets are exact. */
const NOW = Date.UTC(2026, 9, 21, 7, 28, 0);
const NOW_S = NOW / 1_000;

describe('parseRateLimitHeaders', () => {
  it('reads RateLimit-Remaining / RateLimit-Reset in seconds from now', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': '30' }, NOW)).toEqual({ remaining: 0, resetMs: 30_000 });
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '42', 'ratelimit-reset': '1' }, NOW)).toEqual({ remaining: 42, resetMs: 1_000 });
  });

  it('reads fractional seconds, rounding up to the next millisecond', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': '1.5' }, NOW)).toEqual({ remaining: 0, resetMs: 1_500 });
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': '0.0001' }, NOW)).toEqual({ remaining: 0, resetMs: 1 });
  });

  it('tolerates white space around the values', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': ' 0 ', 'ratelimit-reset': ' 7 ' }, NOW)).toEqual({
      remaining: 0,
      resetMs: 7_000,
    });
  });

  it('reads a reset past 10^9 as epoch seconds, measured against the given now', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': String(NOW_S + 30) }, NOW)).toEqual({
      remaining: 0,
      resetMs: 30_000,
    });
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': String(NOW_S + 30) }, NOW + 10_000)).toEqual({
      remaining: 0,
      resetMs: 20_000,
    });
  });

  it('reads an epoch reset in the past as 0', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': String(NOW_S - 5) }, NOW)).toEqual({
      remaining: 0,
      resetMs: 0,
    });
  });

  it('caps a reset at the longest wait accepted from a server', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': '999999999' }, NOW)).toEqual({
      remaining: 0,
      resetMs: MAX_RETRY_AFTER_MS,
    });
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'ratelimit-reset': String(NOW_S + 3 * 86_400) }, NOW)?.resetMs).toBe(
      MAX_RETRY_AFTER_MS,
    );
  });

  it('reads the X-RateLimit-* variants', () => {
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '12' }, NOW)).toEqual({
      remaining: 0,
      resetMs: 12_000,
    });
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': String(NOW_S + 60) }, NOW)).toEqual({
      remaining: 3,
      resetMs: 60_000,
    });
  });

  it('prefers the standard headers over the X- variants when both are sent', () => {
    const headers = { 'ratelimit-remaining': '0', 'ratelimit-reset': '5', 'x-ratelimit-remaining': '9', 'x-ratelimit-reset': '50' };
    expect(parseRateLimitHeaders(headers, NOW)).toEqual({ remaining: 0, resetMs: 5_000 });
  });

  it('mixes a standard and an X- header when each supplies one half', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': '0', 'x-ratelimit-reset': '4' }, NOW)).toEqual({ remaining: 0, resetMs: 4_000 });
  });

  it('reads the combined RateLimit header', () => {
    expect(parseRateLimitHeaders({ ratelimit: 'limit=100, remaining=0, reset=30' }, NOW)).toEqual({ remaining: 0, resetMs: 30_000 });
    expect(parseRateLimitHeaders({ ratelimit: 'limit=100;remaining=7;reset=2.5' }, NOW)).toEqual({ remaining: 7, resetMs: 2_500 });
    expect(parseRateLimitHeaders({ ratelimit: 'LIMIT=10, Remaining=0, Reset=3' }, NOW)).toEqual({ remaining: 0, resetMs: 3_000 });
  });

  it('reads the structured RateLimit field of the current IETF draft', () => {
    expect(parseRateLimitHeaders({ ratelimit: '"default";r=0;t=30' }, NOW)).toEqual({ remaining: 0, resetMs: 30_000 });
    expect(parseRateLimitHeaders({ ratelimit: '"default";r=50;t=30' }, NOW)).toEqual({ remaining: 50, resetMs: 30_000 });
    // Draft-08 wrote the policy name as a token.
    expect(parseRateLimitHeaders({ ratelimit: 'default;r=0;t=5' }, NOW)).toEqual({ remaining: 0, resetMs: 5_000 });
  });

  it('answers with the tightest of several policies: the spent one that resets last, else the fewest left', () => {
    const spent = { ratelimit: '"burst";r=0;t=5, "daily";r=0;t=3600, "hourly";r=7;t=60' };
    expect(parseRateLimitHeaders(spent, NOW)).toEqual({ remaining: 0, resetMs: 3_600_000 });
    expect(parseRateLimitHeaders({ ratelimit: '"burst";r=9;t=5, "daily";r=3;t=3600' }, NOW)).toEqual({ remaining: 3, resetMs: 3_600_000 });
    // A field sent on several lines is one list.
    expect(parseRateLimitHeaders({ ratelimit: ['"burst";r=9;t=5', '"daily";r=0;t=60'] }, NOW)).toEqual({ remaining: 0, resetMs: 60_000 });
  });

  it('takes a spent policy without t to reset within its RateLimit-Policy window', () => {
    const headers = { ratelimit: '"daily";r=0', 'ratelimit-policy': '"burst";q=10;w=1, "daily";q=1000;w=600' };
    expect(parseRateLimitHeaders(headers, NOW)).toEqual({ remaining: 0, resetMs: 600_000 });
  });

  it('does not take `remaining=` from inside another parameter of the combined header', () => {
    expect(parseRateLimitHeaders({ ratelimit: 'limit=100, xremaining=0, reset=30' }, NOW)).toBeUndefined();
  });

  it('fills only the half the separate headers leave out from the combined header', () => {
    const headers = { 'ratelimit-remaining': '2', ratelimit: 'limit=100, remaining=0, reset=30' };
    expect(parseRateLimitHeaders(headers, NOW)).toEqual({ remaining: 2, resetMs: 30_000 });
  });

  it('takes the first of repeated header values', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': ['0', '5'], 'ratelimit-reset': ['10', '20'] }, NOW)).toEqual({
      remaining: 0,
      resetMs: 10_000,
    });
  });

  it.each<[string, Record<string, string | string[] | undefined>]>([
    ['no headers', {}],
    ['only the remaining count', { 'ratelimit-remaining': '0' }],
    ['only the reset', { 'x-ratelimit-reset': '30' }],
    ['undefined values', { 'ratelimit-remaining': undefined, 'ratelimit-reset': undefined }],
    ['an empty list of values', { 'ratelimit-remaining': [], 'ratelimit-reset': '30' }],
    ['a combined header without a reset', { ratelimit: 'limit=100, remaining=0' }],
    ['a structured field with a syntax error', { ratelimit: '"default";r=0;t=30,' }],
    ['a structured field without r', { ratelimit: '"default";t=30' }],
    ['a structured field without t, and no window for its policy', { ratelimit: '"default";r=0', 'ratelimit-policy': '"other";q=10;w=60' }],
  ])('returns undefined for %s', (_, headers) => {
    expect(parseRateLimitHeaders(headers, NOW)).toBeUndefined();
  });

  it.each([
    ['soon', '30'],
    ['0', 'tomorrow'],
    ['-1', '30'],
    ['0', '-5'],
    ['', '30'],
    ['0', ''],
    ['   ', '30'],
    ['NaN', '30'],
    ['0', 'Infinity'],
    ['0x0', '30'],
    ['0', '1e1'],
    ['0', '30s'],
  ])('returns undefined for the garbage values remaining=%j reset=%j', (remaining, reset) => {
    expect(parseRateLimitHeaders({ 'ratelimit-remaining': remaining, 'ratelimit-reset': reset }, NOW)).toBeUndefined();
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining': remaining, 'x-ratelimit-reset': reset }, NOW)).toBeUndefined();
  });
});
