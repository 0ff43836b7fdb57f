/**
 * A worker's cluster client through a spell when the cluster refuses commands (a master down, its
 * slots unserved: `cluster_state:fail`), as between a master's death and its replica's promotion.
 * BullMQ's blocking wait for jobs is abandoned by its watchdog and its connection made again with
 * the client's `connect()`; an ioredis Cluster whose ready check (CLUSTER INFO) fails reconnects by
 * itself but never settles the promise that `connect()` returned, so the shard's fetch loop waited
 * on it for good: no job of the shard was fetched again (e2e cluster.test.ts, a limit key's master
 * killed: 127 of 400 operations left delayed and due, 90 s without a fetch).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisCluster, type ClusterNode, type RedisClusterHandle } from '../../src/support/redis-cluster.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { bullQueueKey } from '../../src/redis/keys.js';
import { openBullQueue } from '../../src/queue/bull-queue.js';
import { newBullWorker } from '../../src/worker/bull-worker.js';
import { sleep } from '../../src/support/sleep.js';
import { uniqueQueue, waitFor } from '../helpers/redis.js';

let cluster: RedisClusterHandle;
beforeAll(async () => {
  // No replicas: a master killed stays down (its slots unserved) until it is restarted.
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0, nodeTimeoutMs: 1_000 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

/** Kills `victim`, waits until another master says the cluster has failed, runs `meanwhile`, restarts it. */
async function outage(victim: ClusterNode, meanwhile: () => Promise<void>): Promise<void> {
  const other = (await cluster.masters()).find((master) => master.port !== victim.port)!;
  const direct = new Redis(other.port, { lazyConnect: true });
  try {
    await victim.server.kill();
    await waitFor(async () => /cluster_state:fail/.test(String(await direct.cluster('INFO'))), {
      what: 'the cluster failed',
      timeoutMs: 15_000,
    });
    await meanwhile();
  } finally {
    direct.disconnect();
    await victim.server.restart();
    await cluster.waitHealthy(30_000);
  }
}

it("a cluster client's connect() made while the cluster is failed settles once it answers", async () => {
  const client = createRedisConnection(cluster.url, { name: 'test:outage-connect', maxRetriesPerRequest: null });
  try {
    await client.ping();
    let settled = false;
    await outage((await cluster.masters())[0]!, async () => {
      client.disconnect();
      await waitFor(() => ['close', 'end'].includes(client.status), { what: 'disconnected', timeoutMs: 5_000 });
      client.connect().then(
        () => (settled = true),
        () => (settled = true),
      );
      await sleep(1_000);
    });
    await waitFor(() => settled, { what: 'connect() settled', timeoutMs: 10_000 });
    expect(await client.ping()).toBe('PONG');
  } finally {
    await closeRedis(client);
  }
}, 90_000);

it('a BullMQ worker on a cluster client fetches again after its queue was unserved past its blocking wait', async () => {
  const client = createRedisConnection(cluster.url, { name: 'test:outage-worker', maxRetriesPerRequest: null });
  const queue = uniqueQueue('outage');
  const bullQueue = openBullQueue(client, queue);
  const processed: string[] = [];
  const worker = newBullWorker(
    queue,
    async (job) => {
      processed.push(job.id!);
      return {};
    },
    client,
    {
      concurrency: 1,
      keepCompletedSeconds: 60,
      keepFailedSeconds: 60,
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      onFetched: () => undefined,
    },
  );
  worker.on('error', () => undefined);
  bullQueue.on('error', () => undefined);
  try {
    void worker.run();
    await bullQueue.add('op', {}, { jobId: 'before' });
    await waitFor(() => processed.includes('before'), { what: 'the first job processed', timeoutMs: 10_000 });
    // Idle, the worker blocks for the next job (BullMQ's drainDelay, 5 s) on the queue's master.
    // Down past the blocking wait's watchdog (the wait plus 1 s), which then makes the connection again.
    await outage(await cluster.masterOf(bullQueueKey(queue, 'marker')), async () => {
      await sleep(9_000);
    });
    await bullQueue.add('op', {}, { jobId: 'after' });
    await waitFor(() => processed.includes('after'), { what: 'the job added after the outage processed', timeoutMs: 20_000 });
  } finally {
    await worker.close(true);
    await bullQueue.close();
    await closeRedis(client);
  }
}, 120_000);
