/**
 * Reading a queue spread over shards (queue/shards.ts) as one: a batch's counters added up over the
 * shards, its results read from each, dead letters listed and paged newest first over every shard,
 * counted and grouped, replayed in the shard that holds them, and the batch listed once. Also once
 * the count is lowered: the shards dropped are still read and drained.
 */
import { describe, expect, it } from 'vitest';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';
import { ShardChangeRefusedError, readShardCount, setShardCount } from '../../src/queue/shards.js';
import { queueKeys, shardName } from '../../src/redis/keys.js';
import type { IndexPosition, NewestFirstPage } from '../../src/outcomes/newest-first.js';
import type { DeadLetter } from '../../src/outcomes/dead-letter.js';
import { runCliInProcess } from '../helpers/cli-in-process.js';
import { createBatches } from '../../src/outcomes/batches.js';

const redis = useRedisServer();

/** Jobs (waiting, prioritized or delayed) in each of a queue's first `count` shards. */
async function jobsPerShard(queue: string, count: number): Promise<number[]> {
  const client = redis().client;
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const base = `sluice:{${shardName(queue, index)}}`;
      const [wait, prioritized, delayed] = await Promise.all([
        client.llen(`${base}:wait`),
        client.zcard(`${base}:prioritized`),
        client.zcard(`${base}:delayed`),
      ]);
      return wait + prioritized + delayed;
    }),
  );
}

/** Each shard's own batch hash (counters as numbers). */
async function batchPerShard(queue: string, count: number, batchId: string): Promise<Record<string, number>[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const hash = await redis().client.hgetall(queueKeys(shardName(queue, index)).batch(batchId));
      return Object.fromEntries(['total', 'succeeded', 'deadLettered'].map((field) => [field, Number(hash[field] ?? 0)]));
    }),
  );
}

/** Every page of `limit`, following `next`. */
async function walk<T>(read: (after: IndexPosition | undefined) => Promise<NewestFirstPage<T>>): Promise<T[][]> {
  const pages: T[][] = [];
  let after: IndexPosition | undefined;
  for (;;) {
    const page = await read(after);
    pages.push(page.items);
    if (!page.next) return pages;
    after = page.next;
    if (pages.length > 100) throw new Error('the walk does not end');
  }
}

/** Operation n goes to /bad (answered 422 until told otherwise) when n is a multiple of 10, else to /good. */
function operations(p: Pipeline, count: number, prefix: string, keyed = false): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, n) =>
    p.op(n % 10 === 0 ? '/bad' : '/good', { meta: { n, prefix }, ...(keyed ? { idempotencyKey: `${prefix}-${n}` } : {}) }),
  );
}

const newestFirst = (letters: DeadLetter[]) =>
  letters.map((letter) => letter.deadLetteredAt).every((at, i, all) => i === 0 || all[i - 1]! >= at);

describe('a queue spread over three shards, read as one', () => {
  it.each([
    ['single jobs', false],
    ['lanes', true],
  ])(
    'a batch spread over every shard: counters added up, results once each, dead letters merged, replayed in their shard (%s)',
    async (_, lanes) => {
      const p = await startPipeline(redis(), { shardPollMs: 100, concurrency: 20 }, { lanes, laneSize: 10 });
      const client = redis().client;
      await p.worker.close();
      await setShardCount(client, p.queue, 3);
      p.target.script('POST /bad', [{ status: 422, json: { error: 'unprocessable' } }]);
      const summary = await p.producer.enqueueMany(operations(p, 150, 'spread'), { batchId: 'spread' });
      expect(summary).toMatchObject({ enqueued: 150 });
      expect((await jobsPerShard(p.queue, 3)).every((count) => count > 0)).toBe(true);

      await p.startWorker({ shardPollMs: 100, concurrency: 20 });
      const status = await p.settled('spread');
      expect(status).toMatchObject({ total: 150, succeeded: 135, deadLettered: 15, pending: 0, duplicates: 0, enqueuing: false });
      expect(status.createdAt).toBeDefined();
      // Each shard counted its own share; the status is their sum.
      const perShard = await batchPerShard(p.queue, 3, 'spread');
      expect(perShard.every((hash) => hash['total']! > 0)).toBe(true);
      expect(perShard.reduce((sum, hash) => sum + hash['total']!, 0)).toBe(150);

      const lines = await p.results('spread');
      expect(lines).toHaveLength(150);
      expect(new Set(lines.map((line) => line.id))).toEqual(new Set(summary.results.map((result) => result.id)));
      expect(lines.filter((line) => line.outcome === 'deadLettered')).toHaveLength(15);
      const failed: string[] = [];
      for await (const line of p.batches.results('spread', { failed: true })) failed.push(line.id);
      expect(failed).toHaveLength(15);

      // Dead letters: in more than one shard, listed newest first over all of them, paged the same.
      const held = await Promise.all([0, 1, 2].map((index) => client.hlen(queueKeys(shardName(p.queue, index)).deadLetters)));
      expect(held.filter((count) => count > 0).length).toBeGreaterThan(1);
      expect(await p.deadLetters.count()).toBe(15);
      const listed = await p.deadLetters.list();
      expect(listed).toHaveLength(15);
      expect(newestFirst(listed)).toBe(true);
      expect(listed.every((letter) => letter.queue === p.queue && letter.batchId === 'spread' && letter.status === 422)).toBe(true);
      const ids = listed.map((letter) => letter.id);
      expect(new Set(ids).size).toBe(15);
      expect(await p.deadLetters.list({}, { limit: 4 })).toEqual(listed.slice(0, 4));
      const pages = await walk((after) => p.deadLetters.page({}, { limit: 4, after }));
      expect(pages.map((page) => page.length)).toEqual([4, 4, 4, 3]);
      expect(pages.flat().map((letter) => letter.id)).toEqual(ids);
      const batchPages = await walk((after) => p.deadLetters.page({ batchId: 'spread', status: 422 }, { limit: 6, after }));
      expect(batchPages.flat().map((letter) => letter.id)).toEqual(ids);
      expect(await p.deadLetters.ids({ batchId: 'spread' })).toEqual(ids);
      for (const id of ids) expect(await p.deadLetters.get(id)).toMatchObject({ id, batchId: 'spread' });
      const groups = await p.deadLetters.summary();
      expect(groups).toMatchObject({ total: 15, groups: [{ status: 422, reason: 'permanent-status', count: 15 }] });
      expect(groups.groups[0]!.latest).toBe(listed[0]!.deadLetteredAt);
      expect(await p.deadLetters.summary({ batchId: 'spread' })).toMatchObject({ total: 15 });

      // Replayed, each into the shard that holds it: they succeed and every shard's counters add up.
      p.target.script('POST /bad', [{ status: 201, json: { created: true } }]);
      const replayed = await p.deadLetters.replay([...ids, 'no-such-id']);
      expect(replayed.replayed.map((entry) => entry.id)).toEqual(ids);
      expect(replayed.missing).toEqual(['no-such-id']);
      const after = await waitFor(
        async () => {
          const current = await p.batches.status('spread');
          return current?.succeeded === 150 ? current : undefined;
        },
        { what: 'the replayed operations to succeed' },
      );
      expect(after).toMatchObject({ total: 150, succeeded: 150, deadLettered: 0, pending: 0 });
      for (const hash of await batchPerShard(p.queue, 3, 'spread'))
        expect(hash).toMatchObject({ succeeded: hash['total'], deadLettered: 0 });
      expect(await p.deadLetters.count()).toBe(0);
      expect(await p.deadLetters.list()).toEqual([]);
      const final = await p.results('spread');
      expect(final).toHaveLength(150);
      expect(final.every((line) => line.outcome === 'succeeded')).toBe(true);
      expect(p.requestsTo('/bad')).toHaveLength(30);

      // The batch is in every shard's index; listed once, as is a batch enqueued after it.
      await p.producer.enqueueMany(operations(p, 30, 'later').slice(1), { batchId: 'later' });
      expect((await p.batches.list()).map((batch) => batch.batchId)).toEqual(['later', 'spread']);
      const batchPages2 = await walk((after2) => p.batches.page({ limit: 1, after: after2 }));
      expect(batchPages2.flat().map((batch) => batch.batchId)).toEqual(['later', 'spread']);
      expect(batchPages2.flat()[1]).toMatchObject({ total: 150, succeeded: 150 });
      await p.settled('later');
    },
  );

  it('a reader that read the count before it was raised still reads a batch opened over more shards whole', async () => {
    const p = await startPipeline(redis());
    await p.worker.close();
    const batches = createBatches(redis().client, p.queue);
    // The reader now holds a count of 1 for a while.
    expect(await batches.status('none-yet')).toBeUndefined();
    await setShardCount(redis().client, p.queue, 3);
    await p.producer.enqueueMany(operations(p, 60, 'wider'), { batchId: 'wider' });
    expect((await jobsPerShard(p.queue, 3)).every((count) => count > 0)).toBe(true);
    expect(await batches.status('wider')).toMatchObject({ total: 60, pending: 60, enqueuing: false });
  });

  it('lowering the count (3 → 1, forced) keeps the older shards read and drained', async () => {
    const p = await startPipeline(redis(), { shardPollMs: 100, concurrency: 20 });
    const client = redis().client;
    await p.worker.close();
    await setShardCount(client, p.queue, 3);
    p.target.script('POST /bad', [{ status: 422 }]);
    const before = await p.producer.enqueueMany(operations(p, 60, 'before', true), { batchId: 'before' });
    expect(before).toMatchObject({ enqueued: 60 });
    // Keys are held: lowering the count is refused unless forced.
    await expect(setShardCount(client, p.queue, 1)).rejects.toBeInstanceOf(ShardChangeRefusedError);
    await setShardCount(client, p.queue, 1, { force: true });
    expect(await readShardCount(client, p.queue)).toEqual({ count: 1, highest: 3 });
    const waiting = await jobsPerShard(p.queue, 3);
    await p.producer.enqueueMany(operations(p, 30, 'after').slice(1), { batchId: 'after' });
    // Written to shard 0 only now.
    const written = await jobsPerShard(p.queue, 3);
    expect(written).toEqual([waiting[0]! + 29, waiting[1]!, waiting[2]!]);
    expect(waiting[1]! + waiting[2]!).toBeGreaterThan(0);

    await p.startWorker({ shardPollMs: 100, concurrency: 20 });
    expect(await p.settled('before')).toMatchObject({ total: 60, succeeded: 54, deadLettered: 6, pending: 0 });
    expect(await p.settled('after')).toMatchObject({ total: 29, succeeded: 27, deadLettered: 2, pending: 0 });
    await waitFor(async () => (await jobsPerShard(p.queue, 3)).every((count) => count === 0), { what: 'every shard drained' });
    expect(await p.results('before')).toHaveLength(60);
    expect((await p.batches.list()).map((batch) => batch.batchId)).toEqual(['after', 'before']);
    const letters = await p.deadLetters.list();
    expect(letters).toHaveLength(8);
    expect(newestFirst(letters)).toBe(true);
    expect(await p.deadLetters.count()).toBe(8);
    expect(await p.deadLetters.summary()).toMatchObject({ total: 8 });
    expect(await p.deadLetters.ids({ batchId: 'before' })).toHaveLength(6);
    // The CLI reads through the same readers.
    const cli = (...args: string[]) => runCliInProcess(['--queue', p.queue, ...args], { REDIS_URL: redis().url });
    expect(JSON.parse((await cli('status', 'before', '--json')).stdout)).toMatchObject({ total: 60, succeeded: 54, deadLettered: 6 });
    expect((await cli('results', 'before')).stdout.trim().split('\n')).toHaveLength(60);
    const listedByCli = await cli('dlq', 'list', '--json');
    expect(
      listedByCli.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as DeadLetter).id),
    ).toEqual(letters.map((letter) => letter.id));
    expect(await cli('wait', 'before', '--json', '--timeout', '5')).toMatchObject({ code: 1 });
    // Purged from whichever shard holds each.
    expect(await p.deadLetters.purge(letters.map((letter) => letter.id))).toBe(8);
    expect(await p.deadLetters.count()).toBe(0);
    expect(await p.deadLetters.summary()).toEqual({ total: 0, groups: [] });
  });
});
