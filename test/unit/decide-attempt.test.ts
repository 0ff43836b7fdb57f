/**
 * How an attempt ends, decided from plain facts: no Redis, no HTTP server, no clock.
 */
import { describe, expect, it } from 'vitest';
import type { AttemptClass } from '../../src/http/classify.js';
import { DEFAULT_RETRY } from '../../src/operation/schema.js';
import type { AttemptRecord } from '../../src/queue/job-data.js';
import { decideAttempt, type AttemptDecision, type AttemptFacts } from '../../src/worker/decide-attempt.js';

const NOW = Date.parse('2026-12-05T12:00:00.000Z');
const retry = { ...DEFAULT_RETRY };

/** `count` failed attempts, the first `ageMs` ago; `rateLimited` of them 429s. */
function history(count: number, options: { ageMs?: number; rateLimited?: number; error?: string } = {}): AttemptRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    at: new Date(NOW - (options.ageMs ?? 1_000) + i).toISOString(),
    durationMs: 5,
    error: options.error ?? 'HTTP_503',
    ...(i < (options.rateLimited ?? 0) ? { rateLimited: true, status: 429 } : {}),
  }));
}

function facts(verdict: AttemptClass, overrides: Partial<AttemptFacts> = {}): AttemptFacts {
  return {
    verdict,
    status: undefined,
    authFailed: false,
    refreshAuth: false,
    nextPage: undefined,
    attempt: 1,
    attempts: history(1),
    retry,
    now: NOW,
    // Full jitter drawn at its top: the delay is the backoff ceiling.
    random: () => 0.999_999,
    ...overrides,
  };
}

const ok: AttemptClass = { kind: 'success' };
const http503: AttemptClass = { kind: 'retry', retryAfterMs: undefined, code: 'HTTP_503' };
const http429 = (retryAfterMs?: number): AttemptClass => ({ kind: 'retry', retryAfterMs, code: 'HTTP_429' });
const paging = { pages: 2, items: 40 };

const cases: [string, AttemptFacts, AttemptDecision][] = [
  ['a shutdown requeues, spending nothing', facts({ kind: 'aborted' }), { kind: 'requeue' }],
  [
    'a refreshable 401 refreshes the token before anything else',
    facts({ kind: 'permanent', code: 'HTTP_401' }, { status: 401, refreshAuth: true }),
    { kind: 'refresh-auth' },
  ],
  ['a success succeeds', facts(ok, { status: 200, attempts: [] }), { kind: 'succeed' }],
  ['a page with a next one goes on to it', facts(ok, { status: 200, nextPage: paging }), { kind: 'next-page', paging }],
  [
    'a permanent status is dead-lettered at once',
    facts({ kind: 'permanent', code: 'HTTP_404' }, { status: 404 }),
    { kind: 'dead-letter', reason: 'permanent-status' },
  ],
  [
    'a body failing expect.schema',
    facts({ kind: 'permanent', code: 'SCHEMA_MISMATCH', message: 'no id' }, { status: 200 }),
    { kind: 'dead-letter', reason: 'schema-mismatch' },
  ],
  [
    'a bad page',
    facts({ kind: 'permanent', code: 'PAGINATION_BAD_PAGE' }, { status: 200 }),
    { kind: 'dead-letter', reason: 'bad-response' },
  ],
  [
    'no answer because the credentials failed',
    facts({ kind: 'permanent', code: 'AUTH_FAILED' }, { authFailed: true }),
    { kind: 'dead-letter', reason: 'auth-failed' },
  ],
  [
    'no answer because the request was refused locally',
    facts({ kind: 'permanent', code: 'ADDRESS_REFUSED' }),
    { kind: 'dead-letter', reason: 'request-error' },
  ],
  [
    'a 503 on the first of 8 attempts waits the backoff ceiling (1 s)',
    facts(http503, { status: 503 }),
    { kind: 'retry', delayMs: 1_000, rateLimited: false },
  ],
  [
    'a 503 on the third attempt waits 4 s',
    facts(http503, { status: 503, attempt: 3, attempts: history(3) }),
    { kind: 'retry', delayMs: 4_000, rateLimited: false },
  ],
  [
    "a target's Retry-After is a floor",
    facts({ ...http503, retryAfterMs: 30_000 } as AttemptClass, { status: 503 }),
    { kind: 'retry', delayMs: 30_000, rateLimited: false },
  ],
  [
    'the last attempt spent',
    facts(http503, { status: 503, attempt: 8, attempts: history(8) }),
    { kind: 'dead-letter', reason: 'attempts-exhausted' },
  ],
  [
    'the last attempt spent on a timeout',
    facts(
      { kind: 'retry', retryAfterMs: undefined, code: 'TIMEOUT_TOTAL' },
      { attempt: 8, attempts: history(8, { error: 'TIMEOUT_TOTAL' }) },
    ),
    { kind: 'dead-letter', reason: 'timeout' },
  ],
  [
    'a retry that would start past maxDurationMs',
    facts(http503, { status: 503, attempts: history(1, { ageMs: retry.maxDurationMs - 500 }) }),
    { kind: 'dead-letter', reason: 'max-duration-exceeded' },
  ],
  [
    'time waited on an open circuit does not count against maxDurationMs',
    facts(http503, { status: 503, attempts: history(1, { ageMs: retry.maxDurationMs - 5_000 + 7_200_000 }), circuitWaitedMs: 7_200_000 }),
    { kind: 'retry', delayMs: 1_000, rateLimited: false },
  ],
  [
    'a 429 spends no attempt and waits at least its Retry-After',
    facts(http429(5_000), { status: 429, attempt: 8, attempts: history(8, { rateLimited: 1 }) }),
    { kind: 'retry', delayMs: 5_000, rateLimited: true },
  ],
  [
    'a 429 without Retry-After backs off by the number of 429s so far (3 → 4 s)',
    facts(http429(), { status: 429, attempts: history(3, { rateLimited: 3 }) }),
    { kind: 'retry', delayMs: 4_000, rateLimited: true },
  ],
  [
    'the 51st 429 in a row',
    facts(http429(), { status: 429, attempts: history(51, { rateLimited: 51 }) }),
    { kind: 'dead-letter', reason: 'rate-limited' },
  ],
  [
    'a page whose items could not be written (disk, Redis) is retried',
    facts({ kind: 'retry', retryAfterMs: undefined, code: 'PAGINATION_WRITE_FAILED' }, { status: 200 }),
    { kind: 'retry', delayMs: 1_000, rateLimited: false },
  ],
];

describe('decideAttempt', () => {
  it.each(cases)('%s', (_name, input, expected) => {
    expect(decideAttempt(input)).toEqual(expected);
  });

  it('draws the backoff with full jitter: from 0 to the ceiling', () => {
    const low = decideAttempt({ ...facts(http503, { status: 503, attempt: 3, attempts: history(3) }), random: () => 0 });
    expect(low).toEqual({ kind: 'retry', delayMs: 0, rateLimited: false });
  });
});
