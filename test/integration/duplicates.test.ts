/**
 * Duplicates in their batch: an operation not enqueued because an earlier one holds its
 * idempotency key is listed in its batch's results (`outcome: "duplicate"`, the job it duplicates,
 * how that job ended) and counted, so the results, `GET /v1/batches/:id/results` and the counters
 * agree — also for a batch made of duplicates only, which reads as done.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import type { ResultLine } from '../../src/outcomes/result-line.js';
import { EMPTY_CONFIG, type SluiceConfig } from '../../src/config/sluice-config.js';
import { createProducer } from '../../src/queue/producer.js';
import { jobIdForKey, queueKeys } from '../../src/redis/keys.js';
import { startApiServer } from '../helpers/api-server.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

const orders = (p: Pipeline, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => p.op('/orders', { idempotencyKey: `order-${from + i}`, meta: { row: from + i } }));

const byRow = (lines: ResultLine[]) => [...lines].sort((a, b) => (a.meta as { row: number }).row - (b.meta as { row: number }).row);

describe('duplicates in their batch', () => {
  it('a file enqueued again under a new batch name lists each duplicate with the job it duplicates and how it ended', async () => {
    const p = await startPipeline(redis());
    const first = await p.producer.enqueueMany(orders(p, 0, 5), { batchId: 'first' });
    expect(await p.settled('first')).toMatchObject({ total: 5, succeeded: 5, duplicates: 0 });

    const again = await p.producer.enqueueMany(orders(p, 0, 5), { batchId: 'again' });
    expect(again).toMatchObject({ enqueued: 0, duplicates: 5 });
    // Nothing to run, five duplicates, and done: nothing pending, nobody adding.
    expect(await p.batches.status('again')).toMatchObject({
      total: 0,
      succeeded: 0,
      deadLettered: 0,
      pending: 0,
      duplicates: 5,
      enqueuing: false,
    });

    const lines = byRow(await p.results('again'));
    expect(lines).toEqual(
      first.results.map((result, row) => ({
        id: `d-${result.id}`,
        jobId: result.id,
        idempotencyKey: `order-${row}`,
        meta: { row },
        outcome: 'duplicate',
        attempts: 0,
        duplicateOf: result.id,
        duplicateOfBatch: 'first',
        firstOutcome: 'succeeded',
      })),
    );
    expect(p.requestsTo('/orders')).toHaveLength(5);

    // The same call once more (a retry) lists nothing twice.
    await p.producer.enqueueMany(orders(p, 0, 5), { batchId: 'again' });
    expect(await p.batches.status('again')).toMatchObject({ total: 0, duplicates: 5 });
    expect(await p.results('again')).toHaveLength(5);
  });

  it('the counters and the results agree over the API; a batch of only duplicates is done', async () => {
    const p = await startPipeline(redis());
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue });
    await p.producer.enqueueMany(orders(p, 0, 3), { batchId: 'api-first' });
    await p.settled('api-first');

    // Rows 1–2 are duplicates of api-first; 3–4 are new.
    const enqueued = await api.call('/v1/operations?batch=api-mixed', { method: 'POST', role: 'enqueue', json: orders(p, 1, 5) });
    expect(await enqueued.json()).toMatchObject({ enqueued: 2, duplicates: 2 });
    const status = await waitFor(
      async () => {
        const body = (await (await api.call('/v1/batches/api-mixed', { role: 'read' })).json()) as Record<string, number | boolean>;
        return body['done'] === true ? body : undefined;
      },
      { what: 'api-mixed to be done' },
    );
    expect(status).toMatchObject({ total: 2, succeeded: 2, deadLettered: 0, pending: 0, duplicates: 2 });
    const ndjson = await (await api.call('/v1/batches/api-mixed/results', { role: 'read' })).text();
    const lines = byRow(
      ndjson
        .trim()
        .split('\n')
        .map((text) => JSON.parse(text) as ResultLine),
    );
    expect(lines.map((line) => [(line.meta as { row: number }).row, line.outcome, line.firstOutcome])).toEqual([
      [1, 'duplicate', 'succeeded'],
      [2, 'duplicate', 'succeeded'],
      [3, 'succeeded', undefined],
      [4, 'succeeded', undefined],
    ]);
    expect(lines).toHaveLength(Number(status!['succeeded']) + Number(status!['deadLettered']) + Number(status!['duplicates']));

    const onlyDuplicates = await api.call('/v1/operations?batch=api-dups', { method: 'POST', role: 'enqueue', json: orders(p, 0, 3) });
    expect(await onlyDuplicates.json()).toMatchObject({ enqueued: 0, duplicates: 3 });
    const dups = (await (await api.call('/v1/batches/api-dups', { role: 'read' })).json()) as Record<string, unknown>;
    expect(dups).toMatchObject({ total: 0, pending: 0, duplicates: 3, done: true });
  });

  it('a resumable input lists a key repeated on a later line of its own batch, but not itself when it is enqueued again', async () => {
    const p = await startPipeline(redis());
    const input = [...orders(p, 0, 2), p.op('/orders', { idempotencyKey: 'order-0', meta: { row: 2 } })];
    const summary = await p.producer.enqueueMany(input, { batchId: 'repeat', resumable: true });
    expect(summary).toMatchObject({ enqueued: 2, duplicates: 1, alreadyEnqueued: 0 });
    await p.settled('repeat');

    // Enqueued again, every line is found as the first run left it: the repeat too, listed at its place.
    const again = await p.producer.enqueueMany(input, { batchId: 'repeat', resumable: true });
    expect(again).toMatchObject({ enqueued: 0, duplicates: 0, alreadyEnqueued: 3 });
    expect(await p.batches.status('repeat')).toMatchObject({ total: 2, succeeded: 2, duplicates: 1, pending: 0 });
    const lines = byRow(await p.results('repeat'));
    expect(lines.map((line) => [(line.meta as { row: number }).row, line.outcome])).toEqual([
      [0, 'succeeded'],
      [1, 'succeeded'],
      [2, 'duplicate'],
    ]);
    expect(lines[2]).toMatchObject({ duplicateOf: lines[0]!.jobId, duplicateOfBatch: 'repeat', firstOutcome: 'succeeded' });
  });

  for (const [limited, afterWindow] of [
    [false, false],
    [true, false],
    [false, true],
  ])
    it(`a resumable input in lanes whose enqueue stopped after writing a chunk but before listing its duplicates lists them when enqueued again (${afterWindow ? "past the keys' window: found by the index of places" : limited ? 'a rated key: the chunk mark read first' : 'no rate: answered by the chunk mark'})`, async () => {
      const rated: SluiceConfig['limits'] = { rated: { requestsPerSecond: 1_000, burst: 100 } };
      const config: SluiceConfig = { ...EMPTY_CONFIG, limits: limited ? rated : {} };
      const p = await startPipeline(redis(), { config }, { lanes: true, ...(afterWindow ? { dedupWindowSeconds: 1 } : {}) });
      await p.worker.close();
      const op = (key: string, row: number) =>
        p.op('/orders', { idempotencyKey: key, meta: { row }, ...(limited ? { limitKey: 'rated' } : {}) });
      // Rows 3 and 4 repeat the keys of rows 0 and 1.
      const input = [op('order-0', 0), op('order-1', 1), op('order-2', 2), op('order-0', 3), op('order-1', 4)];
      const batchId = `cut-${limited}-${afterWindow}`;
      expect(await p.producer.enqueueMany(input, { batchId, resumable: true })).toMatchObject({ enqueued: 3, duplicates: 2 });
      // What a producer killed between the chunk's two calls leaves: the chunk written (its jobs, its
      // mark, its index of places), its duplicates neither listed nor counted.
      const keys = queueKeys(p.queue);
      const listed = (await redis().client.hkeys(keys.batchResults(batchId))).filter((field) => field.startsWith('d-'));
      expect(listed).toHaveLength(2);
      await redis().client.hdel(keys.batchResults(batchId), ...listed);
      await redis().client.hdel(keys.batch(batchId), 'duplicates');
      if (afterWindow) await new Promise((resolve) => setTimeout(resolve, 1_200));

      // Listed now: counted as duplicates, as the first run would have.
      const again = await p.producer.enqueueMany(input, { batchId, resumable: true });
      expect(again).toMatchObject({ enqueued: 0, duplicates: 2, alreadyEnqueued: 3 });
      expect(again.results.slice(3)).toEqual([
        { id: again.results[0]!.id, duplicate: true },
        { id: again.results[1]!.id, duplicate: true },
      ]);
      expect(await p.batches.status(batchId)).toMatchObject({ total: 3, duplicates: 2 });
      // Once more: nothing listed or counted twice, every line already enqueued.
      expect(await p.producer.enqueueMany(input, { batchId, resumable: true })).toMatchObject({ duplicates: 0, alreadyEnqueued: 5 });
      await p.startWorker();
      expect(await p.settled(batchId)).toMatchObject({ total: 3, succeeded: 3, duplicates: 2, pending: 0 });
      const lines = byRow(await p.results(batchId));
      expect(lines.map((line) => [(line.meta as { row: number }).row, line.outcome])).toEqual([
        [0, 'succeeded'],
        [1, 'succeeded'],
        [2, 'succeeded'],
        [3, 'duplicate'],
        [4, 'duplicate'],
      ]);
      expect(lines[3]).toMatchObject({ duplicateOf: lines[0]!.jobId, duplicateOfBatch: batchId });
      expect(p.requestsTo('/orders')).toHaveLength(3);
    });

  it("a resumable input enqueued again after its keys' window: an operation with a key that ran (its job removed) is found by its result, not sent again", async () => {
    const p = await startPipeline(redis(), { keepCompletedSeconds: 0 });
    const producer = createProducer({ connection: redis().url, queue: p.queue, config: p.config, dedupWindowSeconds: 1 });
    onTestFinished(() => producer.close());
    const input = [p.op('/keyed', { idempotencyKey: 'order-k', meta: { row: 0 } }), p.op('/unkeyed', { meta: { row: 1 } })];
    expect(await producer.enqueueMany(input, { batchId: 'late', resumable: true })).toMatchObject({ enqueued: 2 });
    await p.settled('late');
    // Its job removed once done, its key's mark gone with the window: only its result is left.
    const keys = queueKeys(p.queue);
    const left = () => redis().client.exists(keys.idempotency('order-k'), `sluice:{${p.queue}}:${jobIdForKey('order-k')}`);
    await waitFor(async () => (await left()) === 0, { what: "the key's job and mark to be gone" });

    const again = await producer.enqueueMany(input, { batchId: 'late', resumable: true });
    expect(again).toMatchObject({ enqueued: 0, duplicates: 0, alreadyEnqueued: 2 });
    expect(await p.batches.status('late')).toMatchObject({ total: 2, succeeded: 2, pending: 0, duplicates: 0 });
    expect(byRow(await p.results('late')).map((line) => line.outcome)).toEqual(['succeeded', 'succeeded']);
    expect(p.requestsTo('/keyed')).toHaveLength(1);
    expect(p.requestsTo('/unkeyed')).toHaveLength(1);
  });
});
