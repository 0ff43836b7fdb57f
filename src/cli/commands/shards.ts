import { Cluster } from 'ioredis';
import { UsageError } from '../../errors.js';
import { openBullQueue } from '../../queue/bull-queue.js';
import { readShardCount, setShardCount, ShardChangeRefusedError, shardNames } from '../../queue/shards.js';
import type { RedisClient } from '../../redis/client.js';
import { MAX_SHARDS, bullQueueKey } from '../../redis/keys.js';
import type { CliContext } from '../context.js';

/** What `sluice shards` shows of one shard: its jobs, and on a Redis Cluster the slot and master that hold it. */
interface ShardRow {
  shard: string;
  writtenTo: boolean;
  waiting: number;
  active: number;
  delayed: number;
  slot?: number;
  master?: string;
}

/**
 * `sluice shards [COUNT] [--force] [--json]`: how the queue (`--queue`) is spread over shards, or
 * a new count. Refused while idempotency keys are held (exit 1), unless `--force`.
 */
export async function shardsCommand(
  ctx: CliContext,
  count: string | undefined,
  options: { force?: boolean; json?: boolean },
): Promise<number> {
  const redis = await ctx.redis();
  if (count !== undefined) {
    const wanted = Number(count);
    if (!/^\d+$/.test(count) || wanted < 1 || wanted > MAX_SHARDS) {
      throw new UsageError(`shard count ${JSON.stringify(count)}: a whole number from 1 to ${MAX_SHARDS}`);
    }
    try {
      const change = await setShardCount(redis, ctx.queue, wanted, { force: options.force ?? false });
      if (!options.json) {
        const note = change.now.highest > wanted ? ` (workers still drain shards ${wanted}–${change.now.highest - 1})` : '';
        ctx.io.stdout.write(`queue ${ctx.queue}: ${change.previous} → ${wanted} shard(s)${note}\n`);
      }
    } catch (error) {
      if (!(error instanceof ShardChangeRefusedError)) throw error;
      ctx.io.stderr.write(`${error.message.replace('pass force', 'pass --force')}\n`);
      return 1;
    }
  }
  const { count: now, highest } = await readShardCount(redis, ctx.queue);
  const rows = await shardRows(redis, ctx.queue, now, highest);
  if (options.json) {
    ctx.io.stdout.write(`${JSON.stringify({ queue: ctx.queue, count: now, highest, shards: rows })}\n`);
    return 0;
  }
  ctx.io.stdout.write(`queue ${ctx.queue}: ${now} shard(s) written to${highest > now ? `, ${highest} read` : ''}\n`);
  const header = ['SHARD', 'WRITTEN', 'WAITING', 'ACTIVE', 'DELAYED', ...(rows.some((row) => row.master) ? ['SLOT', 'MASTER'] : [])];
  const cells = rows.map((row) => [
    row.shard,
    row.writtenTo ? 'yes' : 'no (drained)',
    String(row.waiting),
    String(row.active),
    String(row.delayed),
    ...(row.master ? [String(row.slot), row.master] : []),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((cell) => cell[i]!.length)));
  for (const line of [header, ...cells])
    ctx.io.stdout.write(
      `${line
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  return 0;
}

async function shardRows(redis: RedisClient, queue: string, count: number, highest: number): Promise<ShardRow[]> {
  return Promise.all(
    shardNames(queue, highest).map(async (shard, index) => {
      const bull = openBullQueue(redis, shard);
      bull.on('error', () => undefined);
      try {
        const jobs = await bull.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
        const row: ShardRow = {
          shard,
          writtenTo: index < count,
          waiting: (jobs['waiting'] ?? 0) + (jobs['prioritized'] ?? 0),
          active: jobs['active'] ?? 0,
          delayed: jobs['delayed'] ?? 0,
        };
        if (redis instanceof Cluster) Object.assign(row, await placement(redis, bullQueueKey(shard, 'marker')));
        return row;
      } finally {
        await bull.close();
      }
    }),
  );
}

/** The slot of a shard's keys and the master that holds it, as the cluster client sees it. */
async function placement(redis: Cluster, key: string): Promise<{ slot: number; master: string }> {
  const slot = Number(await redis.cluster('KEYSLOT', key));
  const [master = '?'] = (redis.slots as string[][])[slot] ?? [];
  return { slot, master };
}
