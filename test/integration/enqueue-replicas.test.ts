/**
 * An enqueue answered only once replicas have it (SLUICE_ENQUEUE_REPLICAS, WAIT): with a replica
 * attached it is answered as before; without one it fails in time, saying so, and the operations it
 * wrote are there (a resumable input enqueued again adds nothing twice).
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { createProducer } from '../../src/queue/producer.js';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { startRedisServer } from '../../src/support/redis-server.js';
import { closeRedis, createRedisConnection, type Redis } from '../../src/redis/connection.js';
import { queuedOperations, uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();
const config = parseSluiceConfig({ allowedHosts: ['api.example.com'] });
const op = (n: number) => ({ method: 'POST', url: `https://api.example.com/items/${n}`, json: { n } });

describe('an enqueue that waits for replicas', () => {
  it('without a replica: fails after the timeout naming the shortfall, and what it wrote is there once', async () => {
    const queue = uniqueQueue('replicas');
    const producer = createProducer({ connection: redis().client, queue, config, replicas: { count: 1, timeoutMs: 150 } });
    onTestFinished(() => producer.close());
    const input = Array.from({ length: 20 }, (_, n) => op(n));
    const started = Date.now();
    const failed = producer.enqueueMany(input, { batchId: 'no-replica', resumable: true });
    // Every operation is written; the answer says so, and why it is not a success.
    await expect(failed).rejects.toMatchObject({
      code: 'ENQUEUE_INCOMPLETE',
      written: { enqueued: 20, duplicates: 0, alreadyEnqueued: 0 },
      cause: {
        code: 'REDIS_UNREACHABLE',
        message: expect.stringContaining('Redis did not confirm the operations on 1 replica within 150 ms (0 did)'),
      },
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(await queuedOperations(redis().client, queue)).toBe(20);

    // Enqueued again, without waiting: nothing twice.
    const plain = createProducer({ connection: redis().client, queue, config });
    onTestFinished(() => plain.close());
    expect(await plain.enqueueMany(input, { batchId: 'no-replica', resumable: true })).toMatchObject({ enqueued: 0, alreadyEnqueued: 20 });
    expect(await queuedOperations(redis().client, queue)).toBe(20);
  });

  it('with a replica attached: answered once the replica has the operations', async () => {
    const primary = await startRedisServer({ args: ['--repl-diskless-sync-delay', '0'] });
    onTestFinished(() => primary.stop());
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    onTestFinished(() => replica.stop());
    const replicaClient = createRedisConnection(replica.url, { name: 'test:replica' }) as Redis;
    onTestFinished(() => closeRedis(replicaClient));
    await waitFor(async () => /master_link_status:up/.test(await replicaClient.info('replication')), { what: 'the replica attached' });

    const queue = uniqueQueue('replicas');
    const producer = createProducer({ connection: primary.url, queue, config, replicas: { count: 1, timeoutMs: 5_000 } });
    onTestFinished(() => producer.close());
    expect(
      await producer.enqueueMany(
        Array.from({ length: 50 }, (_, n) => op(n)),
        { batchId: 'replicated' },
      ),
    ).toMatchObject({ enqueued: 50 });
    // Answered, so on the replica already: no waiting here.
    expect(await queuedOperations(replicaClient, queue)).toBe(50);
  });
});
