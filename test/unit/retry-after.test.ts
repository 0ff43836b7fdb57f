import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../src/http/retry-after.js';

/** A fixed "now" so HTTP dates are judged against a known instant. */
const NOW = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
const DAY_MS = 24 * 60 * 60 * 1_000;

describe('parseRetryAfter', () => {
  it.each([
    ['2', 2_000],
    ['0', 0],
    ['1.5', 1_500],
    ['120', 120_000],
    [' 3 ', 3_000],
    ['0.0001', 1],
  ])('reads delay-seconds %j as %i ms', (value, ms) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });

  it('reads an HTTP date in the future as the time until it', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2026 08:28:00 GMT', NOW)).toBe(60 * 60_000);
  });

  it('reads the obsolete RFC 850 date form', () => {
    expect(parseRetryAfter('Wednesday, 21-Oct-26 07:28:10 GMT', NOW)).toBe(10_000);
  });

  it('reads the obsolete asctime date form', () => {
    expect(parseRetryAfter('Wed Oct 21 07:28:30 2026', NOW)).toBe(30_000);
    expect(parseRetryAfter('Sun Nov  1 07:28:00 2026', NOW)).toBe(DAY_MS);
  });

  it('puts an RFC 850 two-digit year within 50 years of now, as RFC 9110 says (not 1950 for 50)', () => {
    expect(parseRetryAfter('Saturday, 01-Jan-50 00:00:00 GMT', NOW)).toBe(DAY_MS);
    expect(parseRetryAfter('Wednesday, 21-Oct-26 07:28:10 GMT', Date.parse('2099-01-01T00:00:00Z'))).toBe(0);
  });

  // Date.parse reads these as dates (`Wed 2027` is 1 Jan 2027): a garbage header paused the key for 24 h.
  it.each([
    'Wed 2027',
    'Retry 2099',
    'x 2030',
    'May 2030',
    'Oct 2026-10-21',
    'Thu, 31 Feb 2026 07:28:00 GMT',
    'Wed, 21 Oct 2026 07:28:00 PST',
  ])('returns undefined for %j, which is no HTTP-date', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  it('measures a date against the given now, not the clock', () => {
    const date = 'Wed, 21 Oct 2026 07:29:00 GMT';
    expect(parseRetryAfter(date, NOW)).toBe(60_000);
    expect(parseRetryAfter(date, NOW + 45_000)).toBe(15_000);
  });

  it('reads an HTTP date in the past (or now) as 0', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:27:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', NOW)).toBe(0);
  });

  it.each([
    'soon',
    '-1',
    '1e3',
    'Infinity',
    'NaN',
    '12abc',
    '2 seconds',
    '0x10',
    '.5',
    '1,2',
    'Wed, 99 Foo 2026 07:28:00 GMT',
    '2026-10-21',
  ])('returns undefined for the unreadable value %j', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  it.each([undefined, null, '', '   '])('returns undefined for the missing value %j', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  it('caps delay-seconds at 24 h', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(DAY_MS);
    expect(parseRetryAfter('86400', NOW)).toBe(DAY_MS);
    expect(parseRetryAfter('86401', NOW)).toBe(DAY_MS);
    expect(parseRetryAfter('999999999999', NOW)).toBe(DAY_MS);
    expect(parseRetryAfter('1'.padEnd(400, '0'), NOW)).toBe(DAY_MS);
  });

  it('caps a far-future date at 24 h', () => {
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', NOW)).toBe(DAY_MS);
  });

  it('uses the clock when no now is given', () => {
    const inOneMinute = new Date(Date.now() + 60_000).toUTCString();
    const ms = parseRetryAfter(inOneMinute);
    // toUTCString drops milliseconds, and the clock moves on: allow a little either way.
    expect(ms).toBeGreaterThan(55_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });
});
