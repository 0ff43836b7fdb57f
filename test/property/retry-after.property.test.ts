import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../src/http/retry-after.js';

/**
 * `Retry-After` is delay-seconds or an HTTP-date (RFC 9110 §10.2.3, §5.6.7: IMF-fixdate, and the
 * obsolete RFC 850 and asctime forms). Generated values of each kind must read back exactly; any
 * other text must read as nothing, never as some date a lenient parser guessed (a garbage value
 * would pause the key for every worker).
 */

const NOW = Date.parse('2026-10-21T07:28:00Z');
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const time = (d: Date) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

const imfFixdate = (d: Date) =>
  `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${time(d)} GMT`;
const rfc850 = (d: Date) =>
  `${LONG_DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${pad(d.getUTCFullYear() % 100)} ${time(d)} GMT`;
const asctime = (d: Date) =>
  `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${time(d)} ${d.getUTCFullYear()}`;

/** Whole seconds, as HTTP-dates carry them. */
const instant = (min: string, max: string) =>
  fc.date({ min: new Date(min), max: new Date(max), noInvalidDate: true }).map((d) => new Date(Math.floor(d.getTime() / 1_000) * 1_000));
const expectedFor = (d: Date) => Math.min(Math.max(0, d.getTime() - NOW), MAX_RETRY_AFTER_MS);

/** What RFC 9110 calls delay-seconds and HTTP-date (the test's own statement of the grammar). */
const DELAY_SECONDS = /^[ \t]*\d+(?:\.\d+)?[ \t]*$/;
const HTTP_DATE = new RegExp(
  [
    String.raw`(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (?:${MONTHS.join('|')}) \d{4} \d\d:\d\d:\d\d GMT`,
    String.raw`(?:${LONG_DAYS.join('|')}), \d\d-(?:${MONTHS.join('|')})-\d\d \d\d:\d\d:\d\d GMT`,
    String.raw`(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:${MONTHS.join('|')}) [ \d]\d \d\d:\d\d:\d\d \d{4}`,
  ]
    .map((form) => `(?:${form})`)
    .join('|')
    .replace(/^/, '^[ \\t]*(?:')
    .concat(')[ \\t]*$'),
  'i',
);

describe('parseRetryAfter, property-based', () => {
  it('reads delay-seconds as that many milliseconds, capped at 24 h', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(200_000), fc.nat()), fc.constantFrom('', ' ', '\t'), (seconds, space) => {
        expect(parseRetryAfter(`${space}${seconds}${space}`, NOW)).toBe(Math.min(seconds * 1_000, MAX_RETRY_AFTER_MS));
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads an IMF-fixdate or asctime date as the time until it (0 when past, at most 24 h)', () => {
    fc.assert(
      fc.property(instant('1970-01-01', '9999-12-31'), fc.constantFrom(imfFixdate, asctime), (d, format) => {
        expect(parseRetryAfter(format(d), NOW)).toBe(expectedFor(d));
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads an RFC 850 date with its two-digit year in the century that puts it within 50 years of now', () => {
    fc.assert(
      fc.property(instant('1977-01-01', '2076-01-01'), (d) => {
        expect(parseRetryAfter(rfc850(d), NOW)).toBe(expectedFor(d));
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads a date a second or a day from now to the millisecond', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 86_400 }), fc.constantFrom(imfFixdate, rfc850, asctime), (seconds, format) => {
        expect(parseRetryAfter(format(new Date(NOW + seconds * 1_000)), NOW)).toBe(seconds * 1_000);
      }),
      { numRuns: 1_000 },
    );
  });

  it('reads anything else as no value at all', () => {
    const word = fc.constantFrom('Wed', 'Oct', 'GMT', 'soon', 'x', 'in', 'May', 'T', 'Z', 'next', 'Retry');
    const number = fc.oneof(fc.nat(3_000).map(String), fc.constantFrom('07:28:00', '21-Oct-26', '2026-10-21', '1.5', '-1'));
    const text = fc.oneof(
      fc
        .array(fc.oneof(word, number), { minLength: 1, maxLength: 5 })
        .chain((parts) => fc.constantFrom(' ', ', ', '-', '').map((separator) => parts.join(separator))),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(text, (value) => {
        const ms = parseRetryAfter(value, NOW);
        if (DELAY_SECONDS.test(value) || HTTP_DATE.test(value)) return;
        expect(ms, `${JSON.stringify(value)} is neither delay-seconds nor an HTTP-date`).toBeUndefined();
      }),
      { numRuns: 5_000 },
    );
  });
});
