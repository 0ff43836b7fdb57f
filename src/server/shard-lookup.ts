import { shardOfJob } from '../queue/shards.js';
import type { QueueShards, ShardQueue } from './queue-registry.js';

/**
 * The shards to look in for a job, the likeliest first: the one its id picks under the count now
 * (queue/shards.ts). The count may have changed since the job was written, so the others follow.
 */
export function searchOrder(jobId: string, { count, shards }: QueueShards): ShardQueue[] {
  const likely = shardOfJob(jobId, count.count);
  return [...shards.filter((shard) => shard.index === likely), ...shards.filter((shard) => shard.index !== likely)];
}

/**
 * What `find` finds for a job id in the first shard that has it: the likeliest shard alone, then
 * the others at once (each its own call: on a cluster each shard is its own slot).
 */
export async function findInShards<T>(
  shards: QueueShards,
  jobId: string,
  find: (shard: ShardQueue) => Promise<T | undefined>,
): Promise<T | undefined> {
  const [likely, ...others] = searchOrder(jobId, shards);
  if (!likely) return undefined;
  const first = await find(likely);
  if (first !== undefined || others.length === 0) return first;
  return (await Promise.all(others.map(find))).find((found) => found !== undefined);
}
