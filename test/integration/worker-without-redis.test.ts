/**
 * A worker started while its Redis is down (a deploy during an outage) must still stop when told:
 * its client waits for Redis (`maxRetriesPerRequest: null`), so every read it makes on the way in
 * and out is bounded — the queue's shard count (one shard until it answers), the limiter leaving
 * the live processes.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createSluiceWorker } from '../../src/worker/sluice-worker.js';
import { testLogger } from '../helpers/redis.js';

/** A loopback port nothing listens on (taken, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a worker whose Redis is down', () => {
  it('starts with one shard and stops when closed, within seconds', async () => {
    const worker = createSluiceWorker({
      connection: `redis://127.0.0.1:${await deadPort()}`,
      logger: testLogger(),
      warmUp: false,
      metrics: false,
      schedules: false,
      shutdownTimeoutMs: 1_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    await worker.close();
    // The shard count's read gives up after 3 s, the limiter's goodbye after 2 s.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(worker.workers).toHaveLength(0);
  }, 30_000);
});
