import { describe, expect, it } from 'vitest';
import { createRateMeter } from '../../src/limits/rate-meter.js';

/** A hand-moved clock (ms). */
function clock(start = 100_000) {
  let t = start;
  return { now: () => t, set: (ms: number) => (t = ms), advance: (ms: number) => (t += ms) };
}

describe('createRateMeter', () => {
  it('is 0 for a key never counted', () => {
    const c = clock();
    expect(createRateMeter(c.now).rate('orders')).toBe(0);
  });

  it('counts starts in the current second, spread over the time into it plus the previous second', () => {
    const c = clock(100_000);
    const meter = createRateMeter(c.now);
    for (let i = 0; i < 3; i++) meter.count(['orders']);
    expect(meter.rate('orders')).toBe(3);
    c.set(100_500);
    expect(meter.rate('orders')).toBe(2);
    // The next second: the three are the previous bucket now.
    c.set(101_000);
    expect(meter.rate('orders')).toBe(3);
    c.set(101_500);
    expect(meter.rate('orders')).toBe(2);
    // Two seconds on, they are forgotten.
    c.set(102_000);
    expect(meter.rate('orders')).toBe(0);
  });

  it('forgets a bucket after a gap longer than one second', () => {
    const c = clock(100_000);
    const meter = createRateMeter(c.now);
    for (let i = 0; i < 10; i++) meter.count(['orders']);
    c.set(105_200);
    meter.count(['orders']);
    // previous = 0 (the gap), current = 1, 0.2 s into the second.
    expect(meter.rate('orders')).toBeCloseTo(1 / 1.2, 10);
  });

  it('reads a steady rate as that rate at any point in the second', () => {
    const c = clock(100_000);
    const meter = createRateMeter(c.now);
    // 20 starts per second, evenly spaced, for five seconds.
    for (let i = 0; i < 100; i++) {
      c.set(100_000 + i * 50);
      meter.count(['steady']);
    }
    // Discrete counts make it a little off the exact figure depending on the moment.
    for (const at of [104_950, 105_000, 105_010]) {
      c.set(at);
      expect(Math.abs(meter.rate('steady') - 20)).toBeLessThan(1);
    }
  });

  it('counts every key of a multi-key start, each on its own', () => {
    const c = clock(100_000);
    const meter = createRateMeter(c.now);
    meter.count(['orders', 'tenant-7']);
    meter.count(['orders']);
    meter.count([]);
    expect(meter.rate('orders')).toBe(2);
    expect(meter.rate('tenant-7')).toBe(1);
    expect(meter.rate('other')).toBe(0);
  });

  it('keeps reading rates correctly when only rate() moves the buckets on', () => {
    const c = clock(100_000);
    const meter = createRateMeter(c.now);
    for (let i = 0; i < 4; i++) meter.count(['k']);
    c.set(101_250);
    // rate() rolled the bucket: previous 4, current 0; a later count adds to the new second.
    expect(meter.rate('k')).toBeCloseTo(4 / 1.25, 10);
    meter.count(['k']);
    expect(meter.rate('k')).toBeCloseTo(5 / 1.25, 10);
  });

  it('uses Date.now by default', () => {
    const meter = createRateMeter();
    meter.count(['k']);
    const rate = meter.rate('k');
    expect(rate).toBeGreaterThan(0.4);
    expect(rate).toBeLessThanOrEqual(1);
  });
});
