import { describe, expect, it } from 'vitest';
import { couldBeJobId } from '../../src/server/job-lookup.js';

describe('couldBeJobId: which ids are looked up as jobs', () => {
  it.each([
    ['u-3f1c2a9e-0b7d-4c8e-9a1f-2b3c4d5e6f70', true],
    ['k-753d68bc479abf056b6da7c267f85fb73966472a', true],
    ['k-753d68bc479abf056b6da7c267f85fb73966472a.r2', true],
    ['k-753d68bc479abf056b6da7c267f85fb73966472a.r2-mivx3s1k', true],
    ['l-00112233445566778899aabb-7.r1-mivx3s1k', true],
    ['42', true],
    ['order-42', true],
    ['order-42.r1', true],
    ['repeat:abc:1700000000000', true],
    ['meta', false],
    ['events', false],
    ['batches', false],
    ['dlq', false],
    ['none', false],
    ['stalled-check', false],
    ['batch:b-1', false],
    ['batch:b-1:results', false],
    ['dlq:groups:latest', false],
    ['k-753d68bc479abf056b6da7c267f85fb73966472a:logs', false],
    ['metrics:completed', false],
    ['idem:abc', false],
  ])('%s → %s', (id, expected) => {
    expect(couldBeJobId(id)).toBe(expected);
  });
});
