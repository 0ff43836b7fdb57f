/**
 * Redis crashing in the middle of an `enqueueMany`, deterministically: a proxy kills a real
 * redis-server (AOF on, fsync always, as production should run it) just before a chunk's add-jobs
 * call reaches it; the server is restarted with what it persisted. The batch's total counts only
 * jobs that exist, the error says how far it got, and the same call again finishes the batch with
 * nothing missing and nothing twice.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { EnqueueIncompleteError } from '../../src/errors.js';
import { createProducer } from '../../src/queue/producer.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { queueKeys } from '../../src/redis/keys.js';
import { startRedisServer } from '../../src/support/redis-server.js';
import { startCrashProxy } from '../helpers/crash-proxy.js';
import { queuedEnvelopes, queuedOperations, uniqueQueue } from '../helpers/redis.js';

const CHUNK = 100;
const config = parseSluiceConfig({ targets: { api: { baseUrl: 'https://api.example.com' } } });

async function persistentRedis() {
  const server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  onTestFinished(() => server.stop());
  return server;
}

/** 1,000 operations: every third has an idempotency key, the others none; `meta.n` numbers them. */
function operations(): Record<string, unknown>[] {
  return Array.from({ length: 1_000 }, (_, n) => ({
    method: 'POST',
    target: 'api',
    url: '/items',
    json: { n },
    meta: { n },
    ...(n % 3 === 0 ? { idempotencyKey: `item-${n}` } : {}),
  }));
}

/** How many jobs of the queue hold each `meta.n`. */
async function jobsPerOperation(client: ReturnType<typeof createRedisConnection>, queue: string): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const envelope of await queuedEnvelopes(client, queue)) {
    const n = (envelope.op as { meta: { n: number } }).meta.n;
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return counts;
}

describe('Redis crashing during enqueueMany', () => {
  it('counts only the jobs written; the same call again completes the batch, nothing missing, nothing twice', async () => {
    const server = await persistentRedis();
    const queue = uniqueQueue('crash');
    const batchId = 'crash-1';
    // Calls 1 and 2 write chunks 1 and 2; Redis dies just before call 3.
    const proxy = await startCrashProxy(server, { script: 'add-jobs', call: 3 });
    const producer = createProducer({ connection: proxy.url, queue, config, chunkSize: CHUNK });

    const progress: number[] = [];
    const failure = await producer
      .enqueueMany(operations(), { batchId, resumable: true, onWritten: (written) => progress.push(written) })
      .catch((error: unknown) => error);
    await producer.close();
    await proxy.crashed;
    expect(failure).toBeInstanceOf(EnqueueIncompleteError);
    expect(failure).toMatchObject({ batchId, written: { enqueued: 2 * CHUNK, duplicates: 0, alreadyEnqueued: 0 } });
    expect((failure as Error).message).toMatch(/^enqueue into batch crash-1 stopped after 200 operations were written: /);
    // Progress is what was written, chunk by chunk, never what was only read.
    expect(progress).toEqual([CHUNK, 2 * CHUNK]);

    await server.restart();
    const client = createRedisConnection(server.url, { name: 'test' });
    onTestFinished(() => closeRedis(client));
    const keys = queueKeys(queue);
    // Counted with the write: the total is the operations that exist (in lanes: see queue/lanes.ts).
    expect(await queuedOperations(client, queue)).toBe(2 * CHUNK);
    expect(await client.hget(keys.batch(batchId), 'total')).toBe(String(2 * CHUNK));

    const again = createProducer({ connection: server.url, queue, config, chunkSize: CHUNK });
    const resumed: number[] = [];
    const summary = await again.enqueueMany(operations(), {
      batchId,
      resumable: true,
      collectResults: false,
      onWritten: (written) => resumed.push(written),
    });
    await again.close();
    expect(summary).toMatchObject({ enqueued: 800, alreadyEnqueued: 200, duplicates: 0 });
    expect(resumed).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * CHUNK));
    expect(await client.hget(keys.batch(batchId), 'total')).toBe('1000');
    const perOperation = await jobsPerOperation(client, queue);
    expect(perOperation.size).toBe(1_000);
    expect([...perOperation.values()].every((count) => count === 1)).toBe(true);
  });
});
