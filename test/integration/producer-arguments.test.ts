/**
 * A library caller's mistakes are refused with a message naming the field, before anything is
 * opened or written: a producer's numbers out of range (a lane size of 0 turned lanes off
 * silently), and `enqueueMany` given something that is not a list of operations (it opened an empty
 * batch, then failed with "items is not async iterable").
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { createProducer } from '../../src/queue/producer.js';
import { queueKeys } from '../../src/redis/keys.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { queuedOperations, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

describe("a producer's arguments", () => {
  it('refuses a lane size, chunk size, dedup window or retention that is not a whole number in range, before it connects', () => {
    const cases: [Record<string, number>, string][] = [
      [{ laneSize: 0 }, 'laneSize: 0: expected a whole number from 1 to 5000'],
      [{ laneSize: Number.NaN }, 'laneSize: NaN: expected a whole number from 1 to 5000'],
      [{ laneSize: 2.5 }, 'laneSize: 2.5: expected a whole number from 1 to 5000'],
      [{ chunkSize: -1 }, 'chunkSize: -1: expected a whole number from 1 to 5000'],
      [{ dedupWindowSeconds: 0 }, 'dedupWindowSeconds: 0: expected a whole number from 1 to 31536000'],
      [{ batchRetentionSeconds: 10 }, 'batchRetentionSeconds: 10: expected a whole number from 60 to 31536000'],
    ];
    for (const [numbers, message] of cases) {
      expect(() => createProducer({ connection: redis().url, lanes: true, ...numbers })).toThrow(`invalid producer options:\n  ${message}`);
    }
    expect(() => createProducer({ connection: redis().url, laneSize: 0, chunkSize: 0 })).toThrow(/chunkSize: 0: .*\n {2}laneSize: 0: /);
  });

  it('enqueueMany refuses what is not an array or iterable of operations, naming what it got, and opens no batch', async () => {
    const p = await startPipeline(redis());
    const cases: [unknown, string][] = [
      [42, 'got number'],
      [null, 'got null'],
      [undefined, 'got undefined'],
      ['[{"url":"/a"}]', 'got string'],
      [p.op('/one'), 'got object (one operation: use enqueue, or pass [operation])'],
    ];
    for (const [operations, got] of cases) {
      const refused = p.producer.enqueueMany(operations as unknown[], { batchId: 'never' });
      await expect(refused).rejects.toThrow(ValidationError);
      await expect(p.producer.enqueueMany(operations as unknown[], { batchId: 'never' })).rejects.toThrow(
        `invalid operations:\n  operations: expected an array or an iterable of operations, ${got}`,
      );
    }
    expect(await redis().client.zrange(queueKeys(p.queue).batchIndex, 0, -1)).toEqual([]);
    expect(await redis().client.exists(queueKeys(p.queue).batch('never'))).toBe(0);
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
    // A generator is an iterable: taken as one.
    function* two() {
      yield p.op('/gen');
      yield p.op('/gen');
    }
    expect(await p.producer.enqueueMany(two(), { batchId: 'gen' })).toMatchObject({ enqueued: 2 });
  });
});
