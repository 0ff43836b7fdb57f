import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { shardNames, shardOfJob } from '../../src/queue/shards.js';
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
