import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { shardNames, shardOfJob } from '../../src/queue/shards.js';
import { isEarliestEntry } from '../../src/outcomes/newest-first.js';
import { mergeSummaries } from '../../src/outcomes/dead-letter-summary.js';
import { jobIdForKey, jobIdForPlace, sha256, shardOf } from '../../src/redis/keys.js';

describe('shardOfJob', () => {
  it('puts every job in shard 0 of a queue never spread', () => {
    for (const id of [jobIdForKey('a'), 'u-x', 'anything', '']) expect(shardOfJob(id, 1)).toBe(0);
  });

  it('picks the same shard for the same id, and spreads keys, places and UUIDs about evenly', () => {
    const ids = [
      ...Array.from({ length: 3_000 }, (_, n) => jobIdForKey(`key-${n}`)),
      ...Array.from({ length: 3_000 }, (_, n) => jobIdForPlace(sha256(`place-${n}`).slice(0, 40))),
      ...Array.from({ length: 3_000 }, () => `u-${randomUUID()}`),
    ];
    for (const count of [2, 3, 7]) {
      const per = new Array<number>(count).fill(0);
      for (const id of ids) {
        const shard = shardOfJob(id, count);
        expect(shard).toBe(shardOfJob(id, count));
        per[shard]! += 1;
      }
      // 9,000 ids: each shard within 10 % of its even share (σ is about 1 % of it).
      for (const n of per) expect(Math.abs(n - ids.length / count)).toBeLessThan((0.1 * ids.length) / count);
    }
  });

  it('places an id that is not sluice’s (a job added by BullMQ directly) somewhere within the count', () => {
    for (const id of ['1', '42', 'order-17', 'k-not-hex!', 'l-00112233445566778899aabb-3']) {
      const shard = shardOfJob(id, 5);
      expect(shard).toBeGreaterThanOrEqual(0);
      expect(shard).toBeLessThan(5);
    }
  });
});

describe('shard names', () => {
  it('names shard 0 as the queue, the others q#i, and reads them back', () => {
    expect(shardNames('orders', 3)).toEqual(['orders', 'orders#1', 'orders#2']);
    expect(shardNames('orders', 3).map(shardOf)).toEqual([
      { queue: 'orders', index: 0 },
      { queue: 'orders', index: 1 },
      { queue: 'orders', index: 2 },
    ]);
  });
});

describe("isEarliestEntry: an id in several shards' indexes shows at its earliest score", () => {
  it.each([
    { name: 'in one index only', entry: { id: 'b', score: 5, index: 1 }, scores: [null, 5, null], shown: true },
    { name: 'the earliest of two', entry: { id: 'b', score: 5, index: 1 }, scores: [9, 5, null], shown: true },
    { name: 'a later one', entry: { id: 'b', score: 9, index: 0 }, scores: [9, 5, null], shown: false },
    { name: 'a tie: the lower index', entry: { id: 'b', score: 5, index: 0 }, scores: [5, 5, 7], shown: true },
    { name: 'a tie: not the higher index', entry: { id: 'b', score: 5, index: 1 }, scores: [5, 5, 7], shown: false },
    { name: 'gone from its own index since read', entry: { id: 'b', score: 5, index: 2 }, scores: [null, null, null], shown: true },
  ])('$name', ({ entry, scores, shown }) => {
    expect(isEarliestEntry(entry, scores)).toBe(shown);
  });
});

describe('mergeSummaries', () => {
  it("adds up the shards' groups, keeps the newest dead letter's time and example, largest group first", () => {
    const group = (reason: string, count: number, latest: string | null, example: string | null) => ({
      limitKey: 'api',
      status: 404,
      reason,
      count,
      latest,
      example,
    });
    const merged = mergeSummaries([
      { total: 3, groups: [group('permanent-status', 2, '2024-01-02T00:00:00.000Z', 'two'), group('timeout', 1, null, null)] },
      { total: 0, groups: [] },
      {
        total: 2,
        groups: [group('permanent-status', 1, '2024-01-03T00:00:00.000Z', 'three'), group('timeout', 1, '2024-01-01T00:00:00.000Z', 'one')],
      },
    ]);
    expect(merged).toEqual({
      total: 5,
      groups: [group('permanent-status', 3, '2024-01-03T00:00:00.000Z', 'three'), group('timeout', 2, '2024-01-01T00:00:00.000Z', 'one')],
    });
  });
});
