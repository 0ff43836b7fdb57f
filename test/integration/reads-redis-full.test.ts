/**
 * Reads while Redis refuses writes: a real redis-server filled to its `maxmemory` under
 * `noeviction` refuses every write that needs memory (OOM) and aborts every MULTI (EXECABORT), even
 * one made only of reads.
 * Every read path (CLI and HTTP API) must still answer; housekeeping writes may fail quietly.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { limiterKeys, queueKeys } from '../../src/redis/keys.js';
import { createFleetMetrics } from '../../src/observability/fleet-metrics.js';
import { discoverQueues } from '../../src/queue/discover-queues.js';
import { startApiServer } from '../helpers/api-server.js';
import { runCliInProcess, type InProcessResult } from '../helpers/cli-in-process.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';
import { startRedisServer } from '../../src/support/redis-server.js';
import { closeRedis, createRedisConnection, type Redis } from '../../src/redis/connection.js';

const redis = useRedisServer();

const FILLER = 'filler:';

async function usedMemory(client: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
}

/**
 * Sets `maxmemory` a little above what Redis uses and writes until it refuses (OOM). Undone when
 * the test ends, so each test starts with a Redis that takes writes.
 */
async function fillRedis(client: Redis): Promise<void> {
  await client.config('SET', 'maxmemory', String((await usedMemory(client)) + 2 * 1024 * 1024));
  let written = 0;
  onTestFinished(async () => {
    await client.config('SET', 'maxmemory', '0');
    for (let i = 0; i < written; i += 100)
      await client.del(...Array.from({ length: Math.min(100, written - i) }, (_, j) => `${FILLER}${i + j}`));
  });
  // Smaller and smaller values, until even a short one is refused.
  for (const size of [64 * 1024, 4 * 1024, 256, 16]) {
    for (;;) {
      try {
        await client.set(`${FILLER}${written}`, 'x'.repeat(size));
        written += 1;
      } catch (error) {
        if (/^OOM /.test((error as Error).message)) break;
        throw error;
      }
    }
  }
  // Redis at its limit dips below it and back with each client's buffers; hold it just over, as
  // a busy full Redis is, so that every check below is deterministic.
  await client.config('SET', 'maxmemory', String((await usedMemory(client)) - 256 * 1024));
  // Full: a write is refused, and so is a MULTI made only of reads.
  await expect(client.hset('probe', 'a', '1')).rejects.toThrow(/^OOM /);
  await expect(client.multi().get('probe').exec()).rejects.toThrow(/EXECABORT/);
}

function cli(url: string, argv: string[]): Promise<InProcessResult> {
  return runCliInProcess(argv, { REDIS_URL: url });
}

/**
 * A batch with one success and one dead letter, a limit key nobody uses any more (`sluice limits`
 * forgets it: a write), and dead-letter group counters that disagree with the dead letters (the
 * summary rebuilds them: writes). The workers are stopped before Redis fills up.
 */
async function finishedBatch(): Promise<{ p: Pipeline; batchId: string; deadId: string }> {
  const p = await startPipeline(redis());
  p.target.script('POST /ok', [{ status: 200, json: { ok: true } }]);
  p.target.script('POST /missing', [{ status: 404, json: { error: 'no such thing' } }]);
  const batchId = 'full';
  await p.producer.enqueueMany([p.op('/ok'), p.op('/missing')], { batchId });
  await p.settled(batchId);
  await p.worker.close();
  const [deadId] = await p.deadLetters.ids();
  const keys = queueKeys(p.queue);
  await redis().client.del(keys.deadLetterGroups, keys.batchDeadLetterGroups(batchId));
  await redis().client.sadd(limiterKeys.index, 'forgotten-key');
  return { p, batchId, deadId: deadId! };
}

describe('reads while Redis is full (maxmemory, noeviction)', () => {
  it('the CLI answers status, wait, results, dlq list/show and limits', async () => {
    const { p, batchId, deadId } = await finishedBatch();
    await fillRedis(redis().client);
    const url = redis().url;
    const q = ['--queue', p.queue];

    const status = await cli(url, ['status', batchId, '--json', ...q]);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ batchId, total: 2, succeeded: 1, deadLettered: 1, pending: 0 });

    // Finished, with a dead letter: exit 1, as when Redis has room.
    const waited = await cli(url, ['wait', batchId, '--timeout', '10', '--json', ...q]);
    expect(waited.code, waited.stderr).toBe(1);
    expect(JSON.parse(waited.stdout)).toMatchObject({ batchId, deadLettered: 1, pending: 0, timedOut: false, redisUnreachable: false });

    const results = await cli(url, ['results', batchId, ...q]);
    expect(results.code, results.stderr).toBe(0);
    expect(results.stdout.trim().split('\n')).toHaveLength(2);

    const list = await cli(url, ['dlq', 'list', '--batch', batchId, '--json', ...q]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({ id: deadId, status: 404 });

    const show = await cli(url, ['dlq', 'show', deadId, ...q]);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: deadId, reason: 'permanent-status' });

    const limits = await cli(url, ['limits', '--json', ...q]);
    expect(limits.code, limits.stderr).toBe(0);
    expect(JSON.parse(limits.stdout)).toEqual([]);
  });

  it('the HTTP API answers batches, results, operations, dead letters, limits, the overview and /metrics', async () => {
    const { p, batchId, deadId } = await finishedBatch();
    const client = redis().client;
    const metrics = createFleetMetrics({ redis: client, config: p.config, queues: () => discoverQueues(client) });
    onTestFinished(() => metrics.close());
    const api = await startApiServer({ redis: client, config: p.config, queue: p.queue, metrics });
    await fillRedis(client);

    const read = async (path: string) => {
      const response = await api.call(path, { role: 'read' });
      const text = await response.text();
      expect(response.status, `${path}: ${text}`).toBe(200);
      return text;
    };
    expect(JSON.parse(await read(`/v1/batches/${batchId}`))).toMatchObject({ total: 2, succeeded: 1, deadLettered: 1, done: true });
    expect((JSON.parse(await read('/v1/batches')) as { items: unknown[] }).items).toHaveLength(1);
    expect((await read(`/v1/batches/${batchId}/results`)).trim().split('\n')).toHaveLength(2);
    expect(JSON.parse(await read(`/v1/operations/${deadId}`))).toMatchObject({ state: 'dead-lettered' });
    const deadLetters = JSON.parse(await read(`/v1/dead-letters?batch=${batchId}`)) as { total: number; groups: unknown[] };
    expect(deadLetters).toMatchObject({ total: 1, groups: [{ status: 404, reason: 'permanent-status', count: 1 }] });
    expect(JSON.parse(await read('/v1/dead-letters'))).toMatchObject({ total: 1 });
    // The pipeline's target has no limit, but a circuit breaker (on by default): listed, closed.
    expect(JSON.parse(await read('/v1/limits'))).toMatchObject([{ key: 'test-target', configured: null, circuit: { state: 'closed' } }]);
    expect(await read('/metrics')).toContain(`sluice_dead_letters_stored{queue="${p.queue}"} 1`);
    const overview = JSON.parse(await read('/v1/overview')) as { queues: { name: string; batches: unknown[]; deadLetters: unknown }[] };
    const mine = overview.queues.find((queue) => queue.name === p.queue);
    expect(mine).toMatchObject({ batches: [{ batchId, total: 2 }], deadLetters: { total: 1 } });
  });

  it('`sluice limits` answers from a read-only replica, where forgetting unused keys is refused', async () => {
    const { p } = await finishedBatch();
    // The master would wait 5 s for more replicas before it sends the first copy.
    await redis().client.config('SET', 'repl-diskless-sync-delay', '0');
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(redis().server.port)] });
    onTestFinished(() => replica.stop());
    const client = createRedisConnection(replica.url, { name: 'test-replica' });
    onTestFinished(() => closeRedis(client));
    await waitFor(async () => (await client.sismember(limiterKeys.index, 'forgotten-key')) === 1, { what: 'the replica to sync' });
    await expect(client.srem(limiterKeys.index, 'forgotten-key')).rejects.toThrow(/^READONLY /);

    const limits = await cli(replica.url, ['limits', '--json', '--queue', p.queue]);
    expect(limits.code, limits.stderr).toBe(0);
    expect(JSON.parse(limits.stdout)).toEqual([]);
  });
});
