/**
 * A `noeviction` Redis that fills up while workers run: writes that need memory are refused (OOM)
 * until memory is raised again. Requests already made must still end recorded, once each, and
 * none may be sent twice — also when the worker holding them stops while Redis is still full.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../helpers/target-server.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { queuedOperations, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

/** Refuses every write that needs memory (the used memory is far above one byte). */
const fillRedis = () => redis().client.config('SET', 'maxmemory', '1');
const freeRedis = () => redis().client.config('SET', 'maxmemory', '0');
afterEach(freeRedis);

/** Holds Redis full this long: past the old ~8 s of outcome retries and several lock lifetimes. */
const FULL_FOR_MS = 10_000;
const holdFull = () => new Promise((resolve) => setTimeout(resolve, FULL_FOR_MS));

const sentPerKey = (requests: RecordedRequest[]): number[] => {
  const counts = new Map<string, number>();
  for (const request of requests) {
    const key = request.headers['idempotency-key']!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.values()];
};

/** Every job finished: none active, waiting or delayed. */
async function drained(p: Pipeline): Promise<boolean> {
  const client = redis().client;
  const [active, delayed] = await Promise.all([client.llen(`sluice:{${p.queue}}:active`), client.zcard(`sluice:{${p.queue}}:delayed`)]);
  return active === 0 && delayed === 0 && (await queuedOperations(client, p.queue)) === 0;
}

describe('Redis full (noeviction) while workers run', () => {
  it('every operation ends recorded exactly once: none pending, none dead-lettered, none sent twice', async () => {
    // Short locks and frequent stall checks: a job whose lock lapsed while Redis was full would be
    // taken by the other worker and sent again as soon as memory frees.
    const overrides = { concurrency: 30, warmUp: false, lockDurationMs: 2_000, stalledIntervalMs: 1_000 };
    const p = await startPipeline(redis(), overrides);
    await p.startWorker(overrides);
    p.target.setDefault(() => ({ status: 201, json: { ok: true }, delayMs: 300 }));
    const batchId = 'full-300';
    const ops = Array.from({ length: 300 }, (_, i) => p.op('/orders', { idempotencyKey: `full-${i}` }));
    await p.producer.enqueueMany(ops, { batchId });

    await waitFor(() => p.target.requests.length >= 60, { timeoutMs: 20_000, what: '60 requests made' });
    await fillRedis();
    // The requests in flight are answered while Redis refuses their outcomes.
    await waitFor(() => p.target.inFlight() === 0, { timeoutMs: 10_000, what: 'the requests in flight to be answered' });
    const sentWhileFull = p.target.requests.length;
    await holdFull();
    await freeRedis();

    await waitFor(() => drained(p), { timeoutMs: 60_000, intervalMs: 250, what: 'every job to finish' });
    expect(sentWhileFull).toBeLessThan(300);
    expect(await p.batches.status(batchId)).toMatchObject({ total: 300, succeeded: 300, deadLettered: 0, pending: 0 });
    expect(p.target.requests).toHaveLength(300);
    expect(sentPerKey(p.target.requests)).toEqual(Array(300).fill(1));
    expect(await p.deadLetters.count()).toBe(0);
    expect(await redis().client.zcard(`sluice:{${p.queue}}:completed`)).toBe(300);
  }, 120_000);

  it('a worker that stops while Redis is still full records what it sent before it exits: nothing is sent twice', async () => {
    const p = await startPipeline(redis(), { concurrency: 20, warmUp: false, shutdownTimeoutMs: 1_000 });
    p.target.setDefault(() => ({ status: 201, json: { ok: true }, delayMs: 300 }));
    const batchId = 'full-stop';
    const ops = Array.from({ length: 40 }, (_, i) => p.op('/orders', { idempotencyKey: `stop-${i}` }));
    await p.producer.enqueueMany(ops, { batchId });

    await waitFor(() => p.target.requests.length >= 20, { timeoutMs: 20_000, what: '20 requests made' });
    await fillRedis();
    await waitFor(() => p.target.inFlight() === 0, { timeoutMs: 10_000, what: 'the requests in flight to be answered' });
    const sent = p.target.requests.length;
    // Past the shutdown deadline the worker stops retrying, and records the outcomes past maxmemory.
    await p.worker.close();
    await freeRedis();
    // (Read once Redis has room: a full Redis refuses to queue even a transaction's reads.)
    expect((await p.batches.status(batchId))?.succeeded).toBe(sent);

    // Another worker runs the rest of the batch; any job the first one left behind ends as recorded.
    await p.startWorker({ concurrency: 20, warmUp: false, lockDurationMs: 2_000, stalledIntervalMs: 1_000 });
    await waitFor(() => drained(p), { timeoutMs: 60_000, intervalMs: 250, what: 'every job to finish' });
    expect(await p.batches.status(batchId)).toMatchObject({ total: 40, succeeded: 40, deadLettered: 0, pending: 0 });
    expect(sentPerKey(p.target.requests)).toEqual(Array(40).fill(1));
    expect(await p.deadLetters.count()).toBe(0);
  }, 120_000);
});
