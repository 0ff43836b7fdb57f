import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createProducer } from '../../src/queue/producer.js';
import { queueKeys } from '../../src/redis/keys.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

describe('idempotency keys', () => {
  it('runs an operation once however often its key is enqueued, before and after it completed', async () => {
    // One job at a time, in order: a job added before the sentinel would run before it.
    const p = await startPipeline(redis(), { concurrency: 1 });
    const batchId = 'dedup-1';
    const order = p.op('/orders', { idempotencyKey: 'order-1' });

    const first = await p.producer.enqueue(order, { batchId });
    const second = await p.producer.enqueue(order, { batchId });
    expect(first).toEqual({ id: expect.stringMatching(/^k-/), duplicate: false, batchId });
    expect(second).toEqual({ id: first.id, duplicate: true, batchId });

    const done = await p.settled(batchId);
    expect(done).toMatchObject({ total: 1, succeeded: 1, deadLettered: 0, pending: 0 });

    // After completion the key still dedups: nothing new is queued.
    const third = await p.producer.enqueue(order, { batchId });
    expect(third).toEqual({ id: first.id, duplicate: true, batchId });
    await p.producer.enqueue(p.op('/sentinel'), { batchId });
    expect(await p.settled(batchId)).toMatchObject({ total: 2, succeeded: 2, pending: 0 });

    const requests = p.requestsTo('/orders');
    expect(requests).toHaveLength(1);
    expect(requests[0]!.headers['idempotency-key']).toBe('order-1');
  });

  it('gives different keys separate jobs', async () => {
    const p = await startPipeline(redis());
    const batchId = 'dedup-2';
    const a = await p.producer.enqueue(p.op('/orders', { idempotencyKey: 'order-a' }), { batchId });
    const b = await p.producer.enqueue(p.op('/orders', { idempotencyKey: 'order-b' }), { batchId });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(false);
    expect(b.id).not.toBe(a.id);

    expect(await p.settled(batchId)).toMatchObject({ total: 2, succeeded: 2 });
    const keys = p.requestsTo('/orders').map((request) => request.headers['idempotency-key']);
    expect(keys.sort()).toEqual(['order-a', 'order-b']);
  });

  it('dedups a key repeated inside one enqueueMany chunk', async () => {
    const p = await startPipeline(redis());
    const summary = await p.producer.enqueueMany([
      p.op('/orders', { idempotencyKey: 'same', meta: { row: 1 } }),
      p.op('/orders', { idempotencyKey: 'same', meta: { row: 2 } }),
      p.op('/orders', { idempotencyKey: 'other', meta: { row: 3 } }),
    ]);
    expect(summary).toMatchObject({ enqueued: 2, duplicates: 1 });
    const [one, two, three] = summary.results;
    expect(two).toEqual({ id: one!.id, duplicate: true });
    expect(three!.id).not.toBe(one!.id);

    expect(await p.settled(summary.batchId)).toMatchObject({ total: 2, succeeded: 2, pending: 0 });
    const lines = await p.results(summary.batchId);
    // The first of the duplicates is the one that ran.
    expect(lines.map((line) => line.meta)).toEqual(expect.arrayContaining([{ row: 1 }, { row: 3 }]));
    expect(lines).toHaveLength(2);
    const keys = p.requestsTo('/orders').map((request) => request.headers['idempotency-key']);
    expect(keys.sort()).toEqual(['other', 'same']);
  });

  it('lets exactly one of several concurrent enqueues of a key win', async () => {
    const p = await startPipeline(redis());
    const batchId = 'dedup-race';
    const order = p.op('/orders', { idempotencyKey: 'raced' });
    const other = createProducer({ connection: redis().url, queue: p.queue, config: p.config });
    try {
      const results = await Promise.all([p.producer, other, p.producer, other].map((producer) => producer.enqueue(order, { batchId })));
      expect(results.filter((result) => !result.duplicate)).toHaveLength(1);
      expect(new Set(results.map((result) => result.id)).size).toBe(1);
    } finally {
      await other.close();
    }
    // Counted once, so the batch settles.
    expect(await p.settled(batchId)).toMatchObject({ total: 1, succeeded: 1, pending: 0 });
    expect(p.requestsTo('/orders')).toHaveLength(1);
  });

  it('still counts a key as a duplicate while its job outlives the dedup window', async () => {
    const p = await startPipeline(redis(), { concurrency: 1 });
    const shortWindow = createProducer({ connection: redis().url, queue: p.queue, config: p.config, dedupWindowSeconds: 1 });
    try {
      const batchId = 'dedup-window';
      const order = p.op('/orders', { idempotencyKey: 'short' });
      const first = await shortWindow.enqueue(order, { batchId });
      await p.settled(batchId);
      const mark = queueKeys(p.queue).idempotency('short');
      await waitFor(async () => (await redis().client.exists(mark)) === 0, { what: 'the dedup mark to expire' });

      // The completed job is still stored, so BullMQ would not add it again: nothing to count.
      expect(await shortWindow.enqueue(order, { batchId })).toEqual({ id: first.id, duplicate: true, batchId });
      await shortWindow.enqueue(p.op('/sentinel'), { batchId });
      expect(await p.settled(batchId)).toMatchObject({ total: 2, succeeded: 2, pending: 0 });
      expect(p.requestsTo('/orders')).toHaveLength(1);
    } finally {
      await shortWindow.close();
    }
  });

  it('runs and counts a key again once its window has passed and its job is gone', async () => {
    // Completed jobs removed at once, a 1 s window: the same key makes a new job with the same id.
    const p = await startPipeline(redis(), { keepCompletedSeconds: 0 });
    const shortWindow = createProducer({ connection: redis().url, queue: p.queue, config: p.config, dedupWindowSeconds: 1 });
    try {
      const order = p.op('/again', { idempotencyKey: 'again-1' });
      const first = await shortWindow.enqueue(order, { batchId: 'again-a' });
      expect(await p.settled('again-a')).toMatchObject({ total: 1, succeeded: 1 });
      await waitFor(async () => (await redis().client.exists(queueKeys(p.queue).idempotency('again-1'))) === 0, {
        what: 'the dedup mark to expire',
      });
      await waitFor(async () => (await p.bullQueue().getJob(first.id)) === undefined, { what: 'the completed job to be removed' });

      const second = await shortWindow.enqueue(order, { batchId: 'again-b' });
      expect(second).toEqual({ id: first.id, duplicate: false, batchId: 'again-b' });
      // Counted and recorded in its own batch, not mistaken for the first run.
      expect(await p.settled('again-b')).toMatchObject({ total: 1, succeeded: 1, pending: 0 });
      expect(p.requestsTo('/again')).toHaveLength(2);
    } finally {
      await shortWindow.close();
    }
  });

  it('keeps a batch open for wait while its producer is still adding chunks', async () => {
    const p = await startPipeline(redis());
    const batchId = 'slow-source';
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* slowSource() {
      for (let i = 0; i < 5; i += 1) yield p.op('/slow', { idempotencyKey: `slow-${i}` });
      await gate;
      for (let i = 5; i < 10; i += 1) yield p.op('/slow', { idempotencyKey: `slow-${i}` });
    }
    const smallChunks = createProducer({ connection: redis().url, queue: p.queue, config: p.config, chunkSize: 5 });
    try {
      const enqueuing = smallChunks.enqueueMany(slowSource(), { batchId });
      // The first chunk runs to the end while the source waits: nothing pending, yet not finished.
      await waitFor(async () => (await p.batches.status(batchId))?.succeeded === 5, { what: 'the first chunk to succeed' });
      expect(await p.batches.status(batchId)).toMatchObject({ total: 5, pending: 0, enqueuing: true });
      release();
      expect(await enqueuing).toMatchObject({ enqueued: 10 });
      expect(await p.settled(batchId)).toMatchObject({ total: 10, succeeded: 10, enqueuing: false });
    } finally {
      release();
      await smallChunks.close();
    }
  });

  it('renews the batch\'s "still being filled" flag at most once a second, not after every chunk', async () => {
    const queue = uniqueQueue('renew');
    const batchId = 'renew-1';
    const flag = queueKeys(queue).batchEnqueuing(batchId);
    // Every PEXPIRE of the flag, as Redis receives it.
    const monitor = await redis().client.monitor();
    const renewals: number[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'pexpire' && args[1] === flag) renewals.push(Date.now());
    });
    const gate = () => {
      let resolve: () => void = () => undefined;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      return { promise, resolve };
    };
    const gates = [gate(), gate()] as const;
    const op = (n: number) => ({ method: 'POST', target: 'api', url: '/items', json: { n } });
    async function* source() {
      // 100 chunks of 10 at once, then one more after a pause longer than the renewal's spacing, then the last.
      for (let n = 0; n < 1_000; n += 1) yield op(n);
      await gates[0].promise;
      for (let n = 1_000; n < 1_010; n += 1) yield op(n);
      await gates[1].promise;
      for (let n = 1_010; n < 1_020; n += 1) yield op(n);
    }
    const producer = createProducer({
      connection: redis().url,
      queue,
      config: parseSluiceConfig({ targets: { api: { baseUrl: 'https://api.example.com' } } }),
      chunkSize: 10,
    });
    try {
      const startedAt = Date.now();
      const enqueuing = producer.enqueueMany(source(), { batchId });
      await waitFor(async () => Number(await redis().client.hget(queueKeys(queue).batch(batchId), 'total')) >= 990, {
        what: 'the first 99 chunks',
      });
      const burstMs = Date.now() - startedAt;
      // 99 chunks were written, each followed by a renewal before: now one a second at most.
      expect(renewals.length).toBeLessThanOrEqual(Math.ceil(burstMs / 1_000) + 1);
      const before = await redis().client.pttl(flag);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      gates[0].resolve();
      // The chunk after the pause renews it: its TTL is back near a minute (without, it only falls).
      await waitFor(async () => (await redis().client.pttl(flag)) > before - 500, { what: 'the flag renewed after the pause' });
      gates[1].resolve();
      expect(await enqueuing).toMatchObject({ enqueued: 1_020 });
      // Filled: the flag is gone.
      expect(await redis().client.exists(flag)).toBe(0);
    } finally {
      for (const gate of gates) gate.resolve();
      await producer.close();
      monitor.disconnect();
    }
  });

  it('sends Idempotency-Key: sluice-<jobId> on a POST enqueued without a key', async () => {
    const p = await startPipeline(redis());
    const batchId = 'dedup-3';
    const first = await p.producer.enqueue(p.op('/keyless'), { batchId });
    const second = await p.producer.enqueue(p.op('/keyless'), { batchId });
    // Without a key nothing is deduplicated.
    expect(second.duplicate).toBe(false);
    expect(second.id).not.toBe(first.id);

    expect(await p.settled(batchId)).toMatchObject({ total: 2, succeeded: 2 });
    const keys = p.requestsTo('/keyless').map((request) => request.headers['idempotency-key']);
    expect(keys.sort()).toEqual([`sluice-${first.id}`, `sluice-${second.id}`].sort());
    const lines = await p.results(batchId);
    expect(lines.find((line) => line.jobId === first.id)?.idempotencyKey).toBe(`sluice-${first.id}`);
  });
});
