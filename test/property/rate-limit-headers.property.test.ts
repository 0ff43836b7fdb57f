import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS } from '../../src/http/retry-after.js';
import { parseRateLimitHeaders } from '../../src/http/rate-limit-headers.js';

/**
 * Rate-limit headers in each form a target may send them: separate `RateLimit-Remaining` /
 * `RateLimit-Reset` (and `X-`), the combined `RateLimit: limit=, remaining=, reset=`, and the
 * structured `RateLimit` / `RateLimit-Policy` fields of the current IETF draft. Each generated
 * header reads back as what it says; any text reads as nothing or as a sane answer, never a throw.
 */

const NOW = Date.parse('2026-10-21T07:28:00Z');
const NOW_S = NOW / 1_000;
const capped = (ms: number) => Math.min(Math.ceil(ms), MAX_RETRY_AFTER_MS);

const count = fc.oneof(fc.constant(0), fc.nat(10), fc.nat(1_000_000));
const resetSeconds = fc.oneof(
  fc.nat(100_000),
  fc.integer({ min: 0, max: 999 }).map((n) => n / 10),
);
const ows = fc.constantFrom('', ' ', '\t');

describe('parseRateLimitHeaders, property-based', () => {
  it('reads the separate headers: reset in seconds from now, or epoch seconds', () => {
    fc.assert(
      fc.property(
        count,
        fc.oneof(
          resetSeconds.map((s) => ({ text: String(s), ms: capped(s * 1_000) })),
          fc.integer({ min: -1_000, max: 200_000 }).map((s) => ({ text: String(NOW_S + s), ms: capped(Math.max(0, s * 1_000)) })),
        ),
        fc.constantFrom('ratelimit', 'x-ratelimit'),
        ows,
        (remaining, reset, prefix, space) => {
          const headers = { [`${prefix}-remaining`]: `${space}${remaining}${space}`, [`${prefix}-reset`]: `${space}${reset.text}` };
          expect(parseRateLimitHeaders(headers, NOW)).toEqual({ remaining, resetMs: reset.ms });
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('reads the combined limit=, remaining=, reset= form in any order, case and separator', () => {
    fc.assert(
      fc.property(
        count,
        count,
        resetSeconds,
        fc.constantFrom(', ', ',', '; ', ';'),
        fc.constantFrom(
          (name: string) => name,
          (name: string) => name.toUpperCase(),
        ),
        fc.func(fc.integer()),
        (limit, remaining, reset, separator, cased, order) => {
          const parts = [`${cased('limit')}=${limit}`, `${cased('remaining')}=${remaining}`, `${cased('reset')}=${reset}`];
          parts.sort((a, b) => order(a) - order(b));
          expect(parseRateLimitHeaders({ ratelimit: parts.join(separator) }, NOW)).toEqual({ remaining, resetMs: capped(reset * 1_000) });
        },
      ),
      { numRuns: 2_000 },
    );
  });

  interface Policy {
    name: string;
    quota: number;
    remaining: number;
    /** Seconds to the reset (t); undefined: RateLimit leaves t out. */
    reset: number | undefined;
    /** The window (w) RateLimit-Policy gives; undefined: it gives none. */
    window: number | undefined;
  }
  const policy: fc.Arbitrary<Policy> = fc.record({
    name: fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/),
    quota: fc.nat(100_000),
    remaining: count,
    reset: fc.option(fc.nat(200_000), { nil: undefined }),
    window: fc.option(fc.nat(200_000), { nil: undefined }),
  });
  const item = (name: string, params: Record<string, number | undefined>, quoted: boolean) =>
    `${quoted ? JSON.stringify(name) : name}${Object.entries(params)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `;${key}=${value}`)
      .join('')}`;

  it('reads the draft structured fields: the tightest policy, its reset from t or else its window', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(policy, { minLength: 1, maxLength: 4, selector: (one) => one.name }),
        fc.boolean(),
        fc.constantFrom(', ', ','),
        (policies, quoted, separator) => {
          const headers = {
            ratelimit: policies.map((one) => item(one.name, { r: one.remaining, t: one.reset }, quoted)).join(separator),
            'ratelimit-policy': policies.map((one) => item(one.name, { q: one.quota, w: one.window }, quoted)).join(separator),
          };
          const readable = policies
            .map((one) => ({ remaining: one.remaining, reset: one.reset ?? one.window }))
            .filter((one): one is { remaining: number; reset: number } => one.reset !== undefined)
            .map((one) => ({ remaining: one.remaining, resetMs: capped(one.reset * 1_000) }));
          const spent = readable.filter((one) => one.remaining === 0);
          const expected =
            spent.length > 0
              ? { remaining: 0, resetMs: Math.max(...spent.map((one) => one.resetMs)) }
              : readable.length > 0
                ? { remaining: Math.min(...readable.map((one) => one.remaining)) }
                : undefined;
          const found = parseRateLimitHeaders(headers, NOW);
          if (expected === undefined) expect(found).toBeUndefined();
          else expect(found).toMatchObject(expected);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('never throws on any text, and any answer is a count and a reset within 24 h', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: fc.constantFrom(...'"=;, rtqwlimitremainingreset0129.-:?*'), maxLength: 40 }),
    );
    const field = fc.oneof(fc.constant(undefined), text, fc.array(text, { maxLength: 3 }));
    fc.assert(
      fc.property(
        fc.record({
          ratelimit: field,
          'ratelimit-policy': field,
          'ratelimit-remaining': field,
          'ratelimit-reset': field,
          'x-ratelimit-reset': field,
        }),
        (headers) => {
          const found = parseRateLimitHeaders(headers, NOW);
          if (found === undefined) return;
          expect(Number.isFinite(found.remaining) && found.remaining >= 0).toBe(true);
          expect(Number.isInteger(found.resetMs) && found.resetMs >= 0 && found.resetMs <= MAX_RETRY_AFTER_MS).toBe(true);
        },
      ),
      { numRuns: 3_000 },
    );
  });
});
