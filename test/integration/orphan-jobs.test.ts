/**
 * Jobs a worker fetched whose reply Redis never sent (src/worker/orphan-jobs.ts), against a real
 * redis-server and BullMQ: in `active` under a lock of this worker's, not held by it, in both looks
 * with the same token: put back in the queue; anything else is left where it is.
 */
import { Queue, Worker } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { PREFIX, bullQueueKey, bullQueueName, queueKeys } from '../../src/redis/keys.js';
import { ORPHAN_SETTLE_MS, putBackJob, reclaimOrphans, type OrphanHost } from '../../src/worker/orphan-jobs.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

describe('reclaiming orphaned jobs after a reconnect', () => {
  it('puts back only the jobs locked with this worker’s tokens that it does not hold and that kept their lock between the looks', async () => {
    const client = redis().client;
    const name = uniqueQueue('orphans');
    const queue = new Queue(bullQueueName(name), { connection: client, prefix: PREFIX });
    const connection = createRedisConnection(redis().url, { name: 'test:orphans', maxRetriesPerRequest: null });
    const fetcher = new Worker(bullQueueName(name), null, { connection, prefix: PREFIX, autorun: false });
    onTestFinished(async () => {
      await fetcher.close();
      await queue.close();
      await closeRedis(connection);
    });
    for (const id of ['orphan', 'held', 'other', 'relocked']) await queue.add('op', { id }, { jobId: id, priority: 1 });
    // Fetched in the order added (one priority), each under the lock token given.
    const tokens = ['w1:1', 'w1:2', 'w2:1', 'w1:3'];
    for (const token of tokens) expect((await fetcher.getNextJob(token, { block: false }))?.id).toBeDefined();
    const lockOf = (id: string) => client.get(queueKeys(name).jobLock(id));
    expect(await Promise.all(['orphan', 'held', 'other', 'relocked'].map(lockOf))).toEqual(tokens);
    await client.del(bullQueueKey(name, 'marker'));

    const host: OrphanHost = {
      id: 'w1',
      activeKey: `${PREFIX}:${bullQueueName(name)}:active`,
      lockKey: (jobId) => queueKeys(name).jobLock(jobId),
      holds: (jobId) => jobId === 'held',
      markerKey: bullQueueKey(name, 'marker'),
      putBack: (jobId, token) => putBackJob(queue, jobId, token),
    };
    // Between the looks, `relocked` is taken up again under another token (a re-sent fetch answered late).
    const reclaiming = reclaimOrphans(client, host);
    await new Promise((resolve) => setTimeout(resolve, ORPHAN_SETTLE_MS / 2));
    await client.set(queueKeys(name).jobLock('relocked'), 'w1:4');
    expect(await reclaiming).toEqual(['orphan']);

    expect(await (await queue.getJob('orphan'))!.getState()).toBe('prioritized');
    expect(await lockOf('orphan')).toBeNull();
    for (const id of ['held', 'other', 'relocked']) expect(await (await queue.getJob(id))!.getState()).toBe('active');
    // Waiting workers are woken for it.
    expect(await client.zscore(bullQueueKey(name, 'marker'), '0')).toBe('0');
    // A later reconnect finds `relocked` under the same token in both looks, not held: put back; then nothing is left.
    expect(await reclaimOrphans(client, host)).toEqual(['relocked']);
    expect(await reclaimOrphans(client, host)).toEqual([]);
  });
});
