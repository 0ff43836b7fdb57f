import { describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import { findInShards, searchOrder } from '../../src/server/shard-lookup.js';
import type { QueueShards } from '../../src/server/queue-registry.js';
import { shardName } from '../../src/redis/keys.js';

/** A queue's shards as the registry gives them (no BullMQ queue is used by the search itself). */
function shards(count: number, highest: number): QueueShards {
  return {
    count: { count, highest },
    shards: Array.from({ length: highest }, (_, index) => ({ index, name: shardName('q', index), queue: {} as Queue })),
  };
}

describe('the shards searched for a job id', () => {
  it.each([
    // id, count, highest → the order: the shard the id picks under the count now, then the others.
    ['k-00000002aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 3, 3, [2, 0, 1]],
    ['k-00000004aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 3, 3, [1, 0, 2]],
    // The count went down: the shards above it are still searched.
    ['k-00000002aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 3, [0, 1, 2]],
    ['k-00000003aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 2, 4, [1, 0, 2, 3]],
    ['anything', 1, 1, [0]],
  ])('%s over count %i of %i shards: %j', (id, count, highest, order) => {
    expect(searchOrder(id, shards(count, highest)).map((shard) => shard.index)).toEqual(order);
  });

  it('looks in the likeliest shard alone first, then in all the others, and answers the first shard that has it', async () => {
    const asked: number[][] = [];
    let round: number[] = [];
    const find = async (held: Set<number>) =>
      findInShards(shards(3, 4), 'k-00000002aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', async (shard) => {
        round.push(shard.index);
        await Promise.resolve();
        return held.has(shard.index) ? `on ${shard.index}` : undefined;
      }).finally(() => {
        asked.push(round);
        round = [];
      });
    expect(await find(new Set([2]))).toBe('on 2');
    expect(await find(new Set([3, 1]))).toBe('on 1');
    expect(await find(new Set())).toBeUndefined();
    expect(asked).toEqual([[2], [2, 0, 1, 3], [2, 0, 1, 3]]);
  });
});
