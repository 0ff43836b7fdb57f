/**
 * Batch ids cannot name another batch's keys: `srv1:results` is batch `srv1`'s results hash and
 * `srv1:enqueuing` its "still being filled" flag. Such ids are refused wherever they enter (the
 * producer, the API; the CLI in test/e2e/enqueue-integrity.test.ts), and a job written by another
 * client with one runs without touching any batch.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { createProducer } from '../../src/queue/producer.js';
import { queueKeys } from '../../src/redis/keys.js';
import { startApiServer } from '../helpers/api-server.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { replayIdOf } from '../helpers/replay-id.js';
import { queuedOperations, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

describe('batch ids', () => {
  it('the producer refuses an id with `:` before writing anything, naming the id', async () => {
    const p = await startPipeline(redis());
    await p.producer.enqueueMany([p.op('/a')], { batchId: 'srv1' });
    await p.settled('srv1');

    for (const batchId of ['srv1:results', 'srv1:enqueuing']) {
      await expect(p.producer.enqueueMany([p.op('/b')], { batchId })).rejects.toThrow(ValidationError);
      await expect(p.producer.enqueue(p.op('/b'), { batchId })).rejects.toThrow(
        `invalid batch id:\n  batchId: ${JSON.stringify(batchId)}: letters, digits and _ . - only, at most 128`,
      );
    }
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
    expect(await redis().client.zrange(queueKeys(p.queue).batchIndex, 0, -1)).toEqual(['srv1']);
    expect(await redis().client.type(queueKeys(p.queue).batchEnqueuing('srv1'))).toBe('none');
    expect(await p.batches.status('srv1')).toMatchObject({ total: 1, succeeded: 1, pending: 0, enqueuing: false });
    expect(await p.results('srv1')).toHaveLength(1);
  });

  it('a producer refuses a queue name that is not one, before it connects', () => {
    expect(() => createProducer({ connection: redis().url, queue: 'a:b' })).toThrow(
      'invalid queue name:\n  queue: "a:b": letters, digits and _ . - only, at most 100',
    );
    expect(() => createProducer({ connection: redis().url, queue: '{x}' })).toThrow(ValidationError);
  });

  it('POST /v1/operations?batch=srv1:results is a 400 naming the batch; batch srv1 is untouched', async () => {
    const p = await startPipeline(redis());
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue });
    await p.producer.enqueueMany([p.op('/a')], { batchId: 'srv1' });
    await p.settled('srv1');

    for (const batch of ['srv1:results', 'srv1:enqueuing']) {
      const response = await api.call(`/v1/operations?batch=${batch}`, { method: 'POST', role: 'enqueue', json: p.op('/b') });
      expect(response.status).toBe(400);
      expect(JSON.stringify(await response.json())).toContain('batch');
    }
    expect(await p.batches.status('srv1')).toMatchObject({ total: 1, succeeded: 1, pending: 0, enqueuing: false });
    expect(await p.results('srv1')).toHaveLength(1);
  });

  it('a job another client wrote with such a batch id runs without writing into batch srv1', async () => {
    const p = await startPipeline(redis());
    await p.producer.enqueueMany([p.op('/a')], { batchId: 'srv1' });
    await p.settled('srv1');

    await p.bullQueue().add('op', { op: p.op('/foreign'), opId: 'foreign-1', idempotencyKey: 'foreign-1', batchId: 'srv1:results' });
    await waitFor(() => p.requestsTo('/foreign').length === 1, { what: 'the foreign job to run' });
    await waitFor(async () => (await p.bullQueue().getJobCounts('completed')).completed === 2, { what: 'both jobs to complete' });

    const results = await redis().client.hgetall(queueKeys(p.queue).batchResults('srv1'));
    expect(Object.keys(results)).toHaveLength(1);
    expect(JSON.parse(Object.values(results)[0]!)).toMatchObject({ outcome: 'succeeded' });
    expect(await p.results('srv1')).toHaveLength(1);
  });

  it('replaying a dead letter an older version wrote with such a batch id touches no batch', async () => {
    const p = await startPipeline(redis());
    await p.producer.enqueueMany([p.op('/a')], { batchId: 'srv1' });
    await p.settled('srv1');
    p.target.script('POST /gone', [{ status: 404 }]);
    const { id } = await p.producer.enqueue(p.op('/gone'), { batchId: 'other' });
    await p.settled('other');
    // As an older version wrote it: the batch id names batch srv1's results.
    const keys = queueKeys(p.queue);
    const stored = JSON.parse((await redis().client.hget(keys.deadLetters, id))!) as Record<string, unknown>;
    await redis().client.hset(keys.deadLetters, id, JSON.stringify({ ...stored, batchId: 'srv1:results' }));

    p.target.script('POST /gone', [{ status: 201 }]);
    const r1 = await replayIdOf(p.deadLetters, id);
    expect(await p.deadLetters.replay([id])).toEqual({ replayed: [{ id, jobId: r1 }], missing: [] });
    await waitFor(() => p.requestsTo('/gone').length === 2, { what: 'the replay to run' });
    await waitFor(async () => (await p.bullQueue().getJobState(r1)) === 'completed', { what: 'the replay to complete' });
    expect(Object.keys(await redis().client.hgetall(keys.batchResults('srv1')))).toHaveLength(1);
    expect(await p.results('srv1')).toHaveLength(1);
  });
});
