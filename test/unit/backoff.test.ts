import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, type Operation } from '../../src/operation/schema.js';
import { backoffDelay } from '../../src/worker/backoff.js';

const RETRY: Operation['retry'] = { attempts: 10, baseDelayMs: 100, maxDelayMs: 5_000, maxDurationMs: 3_600_000 };

/** The largest value Math.random can return. */
const ALMOST_ONE = 1 - Number.EPSILON / 2;
const top = () => ALMOST_ONE;
const bottom = () => 0;

describe('backoffDelay', () => {
  it('draws up to base·2^(n-1), capped at maxDelayMs, at the top of the random range', () => {
    const ceilings = [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000];
    for (const [index, ceiling] of ceilings.entries()) {
      expect(backoffDelay(RETRY, index + 1, undefined, top), `attempt ${index + 1}`).toBe(ceiling);
    }
  });

  it('is close to the ceiling with random() = 0.999', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const ceiling = Math.min(RETRY.maxDelayMs, RETRY.baseDelayMs * 2 ** (attempt - 1));
      const delay = backoffDelay(RETRY, attempt, undefined, () => 0.999);
      expect(delay).toBeLessThanOrEqual(ceiling);
      expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling * 0.999));
    }
  });

  it('is 0 with random() = 0, whatever the attempt', () => {
    for (const attempt of [1, 2, 5, 20, 60]) expect(backoffDelay(RETRY, attempt, undefined, bottom)).toBe(0);
  });

  it('treats attempt 0 or below like the first retry', () => {
    expect(backoffDelay(RETRY, 0, undefined, top)).toBe(100);
    expect(backoffDelay(RETRY, -3, undefined, top)).toBe(100);
  });

  it('never exceeds maxDelayMs, for every attempt up to 60, including with the default policy', () => {
    for (const retry of [RETRY, { ...DEFAULT_RETRY }, { ...RETRY, baseDelayMs: 7, maxDelayMs: 7 }]) {
      for (let attempt = 1; attempt <= 60; attempt++) {
        const delay = backoffDelay(retry, attempt, undefined, () => 0.9999);
        expect(Number.isFinite(delay), `attempt ${attempt}`).toBe(true);
        expect(delay, `attempt ${attempt}`).toBeLessThanOrEqual(retry.maxDelayMs);
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });

  it('is 0 when both delays are 0', () => {
    expect(backoffDelay({ ...RETRY, baseDelayMs: 0, maxDelayMs: 0 }, 5, undefined, top)).toBe(0);
  });

  it('waits at least Retry-After, even above maxDelayMs', () => {
    expect(backoffDelay(RETRY, 1, 3_000, bottom)).toBe(3_000);
    expect(backoffDelay(RETRY, 1, 3_000, top)).toBe(3_000);
    expect(backoffDelay(RETRY, 30, 60_000, top)).toBe(60_000);
    expect(backoffDelay(RETRY, 30, RETRY.maxDelayMs * 10, bottom)).toBe(RETRY.maxDelayMs * 10);
  });

  it('keeps the jittered delay when it is above Retry-After', () => {
    expect(backoffDelay(RETRY, 6, 1_000, top)).toBe(3_200);
    expect(backoffDelay(RETRY, 6, 0, top)).toBe(3_200);
  });

  it('spreads delays over [0, cap] with Math.random (full jitter)', () => {
    const cap = 1_000;
    const retry = { ...RETRY, baseDelayMs: cap, maxDelayMs: cap };
    const draws = Array.from({ length: 2_000 }, () => backoffDelay(retry, 3, undefined));
    for (const delay of draws) {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(cap);
    }
    // Uniform on [0, cap]: mean cap/2 with a standard error of about cap/155 for 2,000 draws;
    // the band below is more than 10 standard errors wide on each side.
    const mean = draws.reduce((sum, delay) => sum + delay, 0) / draws.length;
    expect(mean).toBeGreaterThan(cap * 0.43);
    expect(mean).toBeLessThan(cap * 0.57);
    // Every tenth of the range is used, none by more than twice its share.
    const deciles = new Array<number>(10).fill(0);
    for (const delay of draws) deciles[Math.min(9, Math.floor(delay / (cap / 10)))]! += 1;
    for (const count of deciles) {
      expect(count).toBeGreaterThan(100);
      expect(count).toBeLessThan(400);
    }
  });
});
