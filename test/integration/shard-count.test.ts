/**
 * A queue's shard count (queue/shards.ts): set and read, a change refused while idempotency keys
 * are held, a worker that picks up shards added while it runs, and a batch that keeps the count it
 * was opened with, so an input enqueued again after a change finds every line where it left it.
 */
import { describe, expect, it } from 'vitest';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, uniqueQueue, waitFor } from '../helpers/redis.js';
import { ShardChangeRefusedError, readShardCount, setShardCount, shardOfJob } from '../../src/queue/shards.js';
import { jobIdForKey, queueKeys } from '../../src/redis/keys.js';
import { runCliInProcess } from '../helpers/cli-in-process.js';
import { createProducer } from '../../src/queue/producer.js';

const redis = useRedisServer();

/** Jobs (waiting, prioritized or delayed) in each of a queue's first `count` shards. */
async function jobsPerShard(queue: string, count: number): Promise<number[]> {
  const client = redis().client;
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const base = `sluice:{${index === 0 ? queue : `${queue}#${index}`}}`;
      const [wait, prioritized, delayed] = await Promise.all([
        client.llen(`${base}:wait`),
        client.zcard(`${base}:prioritized`),
        client.zcard(`${base}:delayed`),
      ]);
      return wait + prioritized + delayed;
    }),
  );
}

describe('a queue spread over shards', () => {
  it('reads one shard for a queue never spread; a count is a whole number from 1 to 64; lowering it keeps the highest', async () => {
    const queue = uniqueQueue('shards');
    const client = redis().client;
    expect(await readShardCount(client, queue)).toEqual({ count: 1, highest: 1 });
    for (const bad of [0, 65, 1.5, Number.NaN]) await expect(setShardCount(client, queue, bad)).rejects.toThrow(/1 to 64/);
    expect(await setShardCount(client, queue, 3)).toEqual({ queue, previous: 1, now: { count: 3, highest: 3 } });
    expect(await setShardCount(client, queue, 2)).toEqual({ queue, previous: 3, now: { count: 2, highest: 3 } });
    expect(await readShardCount(client, queue)).toEqual({ count: 2, highest: 3 });
    expect(await client.hgetall(queueKeys(queue).shards)).toEqual({ fence: '2', count: '2', highest: '3' });
  });

  it('spreads a batch over every shard, refuses a change while its keys are held (unless forced), and sends each once', async () => {
    const p = await startPipeline(redis(), { shardPollMs: 100 });
    const client = redis().client;
    await setShardCount(client, p.queue, 3);
    // The worker started on one shard: it finds the two new ones within its poll.
    await waitFor(() => p.worker.workers.length === 3, { what: 'the worker to run three shards' });
    await p.worker.close();
    const operations = Array.from({ length: 300 }, (_, n) => p.op('/spread', { idempotencyKey: `spread-${n}` }));
    const summary = await p.producer.enqueueMany(operations, { batchId: 'spread-1' });
    expect(summary).toMatchObject({ enqueued: 300, duplicates: 0 });
    const perShard = await jobsPerShard(p.queue, 3);
    expect(perShard.reduce((a, b) => a + b, 0)).toBe(300);
    // Each key's shard is its job id's pick, so the spread is about even (binomial: 100 ± 30 is > 4.5σ).
    for (const count of perShard) expect(count).toBeGreaterThan(70);
    expect(await jobsPerShard(p.queue, 3)).toEqual(
      [0, 1, 2].map((shard) => operations.filter((_, n) => shardOfJob(jobIdForKey(`spread-${n}`), 3) === shard).length),
    );

    const refused = await setShardCount(client, p.queue, 4).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ShardChangeRefusedError);
    expect((refused as ShardChangeRefusedError).heldMarks).toBe(300);
    expect((refused as Error).message).toMatch(/300 idempotency key\(s\) are held .* pass force/);
    expect(await readShardCount(client, p.queue)).toEqual({ count: 3, highest: 3 });

    await p.startWorker({ shardPollMs: 100 });
    await waitFor(async () => (await jobsPerShard(p.queue, 3)).every((count) => count === 0), { what: 'every shard drained' });
    await waitFor(() => p.requestsTo('/spread').length === 300, { what: '300 requests' });
    // The same keys again: each is found on its shard.
    expect(await p.producer.enqueueMany(operations, { batchId: 'spread-2' })).toMatchObject({ enqueued: 0, duplicates: 300 });
    expect(p.requestsTo('/spread')).toHaveLength(300);
    expect(new Set(p.requestsTo('/spread').map((request) => request.headers['idempotency-key'])).size).toBe(300);
  });

  it('a producer whose count went stale is refused by the shards and routes its keyed operations anew: a key is never on two shards', async () => {
    const queue = uniqueQueue('fence');
    const client = redis().client;
    const config = { targets: {}, limits: {}, allowedHosts: ['api.example.com'] };
    const op = (key?: string) => ({ method: 'POST', url: 'https://api.example.com/x', ...(key ? { idempotencyKey: key } : {}) });
    const early = createProducer({ connection: client, queue, config });
    // It reads the count (one shard) and keeps it for 5 s.
    await early.enqueue(op());
    // No key is held yet: the change is allowed.
    await setShardCount(client, queue, 3);
    // Keys routed by one shard are refused by the fence, read the count again and go where a fresh producer sends them.
    const keys = Array.from({ length: 30 }, (_, n) => `fenced-${n}`);
    const first = await early.enqueueMany(keys.map((key) => op(key)));
    expect(first).toMatchObject({ enqueued: 30, duplicates: 0 });
    const single = await early.enqueue(op('fenced-single'));
    expect(single.duplicate).toBe(false);
    const perShard = await jobsPerShard(queue, 3);
    expect(perShard).toEqual(
      [0, 1, 2].map(
        (shard) =>
          keys.filter((key) => shardOfJob(jobIdForKey(key), 3) === shard).length +
          (shardOfJob(jobIdForKey('fenced-single'), 3) === shard ? 1 : 0) +
          // The first, keyless operation went to shard 0 (one shard then).
          (shard === 0 ? 1 : 0),
      ),
    );
    const fresh = createProducer({ connection: client, queue, config });
    expect(await fresh.enqueueMany([...keys, 'fenced-single'].map((key) => op(key)))).toMatchObject({ enqueued: 0, duplicates: 31 });
    await Promise.all([early.close(), fresh.close()]);
  });

  it('a change refused gives the old count back to every shard: producers go on writing', async () => {
    const queue = uniqueQueue('fence-back');
    const client = redis().client;
    const config = { targets: {}, limits: {}, allowedHosts: ['api.example.com'] };
    const producer = createProducer({ connection: client, queue, config });
    await setShardCount(client, queue, 2);
    await producer.enqueue({ method: 'POST', url: 'https://api.example.com/x', idempotencyKey: 'held' });
    await expect(setShardCount(client, queue, 3)).rejects.toBeInstanceOf(ShardChangeRefusedError);
    for (const shard of [queue, `${queue}#1`, `${queue}#2`]) expect(await client.hget(queueKeys(shard).shards, 'fence')).toBe('2');
    expect(await producer.enqueue({ method: 'POST', url: 'https://api.example.com/x', idempotencyKey: 'after' })).toMatchObject({
      duplicate: false,
    });
    await producer.close();
  });

  it.each([
    ['single jobs', false],
    ['lanes', true],
  ])(
    'a batch keeps the shard count it was opened with: the same input enqueued again after a change adds nothing (%s)',
    async (_, lanes) => {
      const p = await startPipeline(redis(), { shardPollMs: 100 }, { lanes, laneSize: 20 });
      const client = redis().client;
      await p.worker.close();
      await setShardCount(client, p.queue, 3);
      const operations = Array.from({ length: 200 }, (_, n) => p.op('/again', { meta: { n } }));
      const first = await p.producer.enqueueMany(operations, { batchId: 'again-1', resumable: true });
      expect(first).toMatchObject({ enqueued: 200 });
      // Lanes are jobs too: each shard holds some (a lane's operations share its shard).
      expect((await jobsPerShard(p.queue, 3)).every((count) => count > (lanes ? 0 : 30))).toBe(true);
      // No idempotency key is held (a place belongs to its batch): nothing to refuse.
      await setShardCount(client, p.queue, 2);
      const again = await p.producer.enqueueMany(operations, { batchId: 'again-1', resumable: true });
      expect(again).toMatchObject({ enqueued: 0, alreadyEnqueued: 200 });
      expect(again.results.map((result) => result.id)).toEqual(first.results.map((result) => result.id));
      await p.startWorker({ shardPollMs: 100 });
      await waitFor(() => p.requestsTo('/again').length === 200, { what: '200 requests' });
      await waitFor(async () => (await jobsPerShard(p.queue, 3)).every((count) => count === 0), { what: 'every shard drained' });
      expect(p.requestsTo('/again')).toHaveLength(200);
    },
  );

  it.each([
    ['single jobs', false],
    ['lanes', true],
  ])(
    'a line with an idempotency key enqueued again after the count changed is found on the shard it was written to (%s)',
    async (_, lanes) => {
      // Keyed lines are routed by the queue's count (their key's dedup is on one shard), not their batch's.
      const p = await startPipeline(redis(), { shardPollMs: 100 }, { lanes, laneSize: 20, dedupWindowSeconds: 1 });
      const client = redis().client;
      await p.worker.close();
      const operations = Array.from({ length: 200 }, (_, n) => ({ ...p.op('/keyed-again', { meta: { n } }), idempotencyKey: `row-${n}` }));
      const first = await p.producer.enqueueMany(operations, { batchId: 'keyed-again', resumable: true });
      expect(first).toMatchObject({ enqueued: 200 });
      // Past the dedup window no key is held: the count may change, and most keys now pick another shard.
      await waitFor(async () => (await client.keys(`sluice:{${p.queue}*:idem:*`)).length === 0, { what: 'the keys released' });
      await setShardCount(client, p.queue, 3);
      const moved = operations.filter((op) => shardOfJob(jobIdForKey(op.idempotencyKey), 3) !== 0).length;
      expect(moved).toBeGreaterThan(100);
      const again = await p.producer.enqueueMany(operations, { batchId: 'keyed-again', resumable: true });
      expect(again).toMatchObject({ enqueued: 0, duplicates: 0, alreadyEnqueued: 200 });
      expect(again.results.map((result) => result.id)).toEqual(first.results.map((result) => result.id));
      expect(await jobsPerShard(p.queue, 3)).toEqual([lanes ? expect.any(Number) : 200, 0, 0]);
      // And once more at 2 (highest stays 3): every line still found where the first run left it.
      await setShardCount(client, p.queue, 2);
      const third = await p.producer.enqueueMany(operations, { batchId: 'keyed-again', resumable: true });
      expect(third).toMatchObject({ enqueued: 0, alreadyEnqueued: 200 });
      await p.startWorker({ shardPollMs: 100 });
      await waitFor(() => p.requestsTo('/keyed-again').length === 200, { what: '200 requests' });
      await waitFor(async () => (await jobsPerShard(p.queue, 3)).every((count) => count === 0), { what: 'every shard drained' });
      expect(p.requestsTo('/keyed-again')).toHaveLength(200);
      // Sent once each, and once the batch ran, a rerun still adds nothing (its results and index say so).
      expect(new Set(p.requestsTo('/keyed-again').map((request) => request.headers['idempotency-key'])).size).toBe(200);
      const after = await p.producer.enqueueMany(operations, { batchId: 'keyed-again', resumable: true });
      expect(after).toMatchObject({ enqueued: 0, alreadyEnqueued: 200 });
    },
  );

  it('`sluice shards` shows and sets the count, refuses a bad one (exit 2) and a change while keys are held (exit 1, naming --force)', async () => {
    const queue = uniqueQueue('cli-shards');
    const env = { REDIS_URL: redis().url };
    const cli = (...args: string[]) => runCliInProcess(['--queue', queue, 'shards', ...args], env);
    const shown = await cli();
    expect(shown).toMatchObject({ code: 0, stderr: '' });
    expect(shown.stdout).toMatch(
      new RegExp(`^queue ${queue}: 1 shard\\(s\\) written to\\nSHARD +WRITTEN +WAITING +ACTIVE +DELAYED\\n${queue} +yes +0 +0 +0\\n$`),
    );
    expect(await cli('3')).toMatchObject({ code: 0 });
    for (const bad of ['0', '65', 'two', '1.5']) {
      const refused = await cli(bad);
      expect(refused.code, bad).toBe(2);
      expect(refused.stderr).toContain(`shard count "${bad}": a whole number from 1 to 64`);
    }
    const producer = createProducer({
      connection: redis().client,
      queue,
      config: { targets: {}, limits: {}, allowedHosts: ['api.example.com'] },
    });
    await producer.enqueueMany([{ method: 'POST', url: 'https://api.example.com/x', idempotencyKey: 'held-1' }]);
    await producer.close();
    const held = await cli('2');
    expect(held.code).toBe(1);
    expect(held.stderr).toMatch(/not changing its shards from 3 to 2: 1 idempotency key\(s\) are held .* pass --force/);
    const forced = await cli('2', '--force');
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain(`queue ${queue}: 3 → 2 shard(s) (workers still drain shards 2–2)`);
    const json = JSON.parse((await cli('--json')).stdout) as {
      count: number;
      highest: number;
      shards: { shard: string; writtenTo: boolean; waiting: number }[];
    };
    expect(json).toMatchObject({ count: 2, highest: 3 });
    expect(json.shards.map((shard) => [shard.shard, shard.writtenTo])).toEqual([
      [queue, true],
      [`${queue}#1`, true],
      [`${queue}#2`, false],
    ]);
    expect(json.shards.reduce((sum, shard) => sum + shard.waiting, 0)).toBe(1);
  });
});
