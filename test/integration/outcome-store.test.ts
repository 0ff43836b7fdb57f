/**
 * The outcome store against a real redis-server: outcomes recorded at the same time are written in
 * groups, each exactly once, with the same counters as one by one.
 */
import { describe, expect, it } from 'vitest';
import { createOutcomeStore, laneMarkerKey, type OutcomeRecord } from '../../src/outcomes/outcome-store.js';
import { queueKeys } from '../../src/redis/keys.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { groupField } from '../../src/outcomes/dead-letter-groups.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

async function scriptCalls(): Promise<number> {
  const info = await redis().client.info('commandstats');
  return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

function outcome(i: number, batchId: string | undefined): OutcomeRecord {
  const dead = i % 10 === 0;
  return {
    jobId: `job-${i}`,
    jobTimestamp: 1_000,
    opId: `op-${i}`,
    batchId,
    outcome: dead ? 'deadLettered' : 'succeeded',
    resultLine: {
      id: `op-${i}`,
      jobId: `job-${i}`,
      idempotencyKey: `sluice-job-${i}`,
      outcome: dead ? 'deadLettered' : 'succeeded',
      attempts: 1,
    },
    ...(dead ? { deadLetter: { jobId: `job-${i}`, reason: 'permanent-status', status: 404, limitKey: 'orders' } } : {}),
  };
}

describe('outcome store', () => {
  it('writes 500 outcomes recorded at once in a few calls, each once, counted per batch and per dead-letter group', async () => {
    const queue = uniqueQueue('outcomes');
    const keys = queueKeys(queue);
    const client = createRedisConnection(redis().url, { name: 'test:outcomes' });
    try {
      const store = createOutcomeStore(client, queue, 3_600);
      const before = await scriptCalls();
      // Half in a batch, half without; job-0 … job-9 twice (a job that ran twice is counted once).
      const records = Array.from({ length: 500 }, (_, i) => outcome(i, i % 4 < 2 ? 'b-1' : undefined));
      const again = records.slice(0, 10).map((record) => ({ ...record }));
      const written = await Promise.all([...records, ...again].map((record) => store.record(record)));
      const calls = (await scriptCalls()) - before;

      expect(written.slice(0, 500).every(Boolean)).toBe(true);
      expect(written.slice(500)).toEqual(Array(10).fill(false));
      expect(calls, `${calls} script calls`).toBeLessThanOrEqual(5);

      const batch = await redis().client.hgetall(keys.batch('b-1'));
      expect(Number(batch.succeeded)).toBe(225);
      expect(Number(batch.deadLettered)).toBe(25);
      expect(await redis().client.hlen(keys.batchResults('b-1'))).toBe(250);
      expect(await redis().client.ttl(keys.batchResults('b-1'))).toBeGreaterThan(3_500);
      expect(await redis().client.hlen(keys.deadLetters)).toBe(50);
      expect(await redis().client.zcard(keys.batchDeadLetters('b-1'))).toBe(25);
      const group = groupField({ limitKey: 'orders', status: 404, reason: 'permanent-status' });
      expect(await redis().client.hget(keys.deadLetterGroups, group)).toBe('50');
      expect(await redis().client.hget(keys.batchDeadLetterGroups('b-1'), group)).toBe('25');

      // One at a time, each is written at once (an idle worker waits for no group).
      const single = await store.record(outcome(1_001, 'b-2'));
      expect(single).toBe(true);
      expect(await redis().client.hget(keys.batch('b-2'), 'succeeded')).toBe('1');
    } finally {
      await closeRedis(client);
    }
  });

  it('a failed write fails every outcome of its group, and the next ones are written', async () => {
    const queue = uniqueQueue('outcomes');
    const client = createRedisConnection(redis().url, { name: 'test:outcomes' });
    try {
      const store = createOutcomeStore(client, queue, 3_600);
      // The batch hash is a string: HINCRBY fails inside the script (WRONGTYPE).
      await redis().client.set(queueKeys(queue).batch('broken'), 'not a hash');
      const results = await Promise.allSettled([store.record(outcome(1, 'broken')), store.record(outcome(3, 'broken'))]);
      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
      expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
      expect(await store.record(outcome(5, 'fine'))).toBe(true);
    } finally {
      await closeRedis(client);
    }
  });

  it("marks a lane's operations in one key, two bits each: each once, also twice in one call, and each read back", async () => {
    const queue = uniqueQueue('outcomes');
    const keys = queueKeys(queue);
    const client = createRedisConnection(redis().url, { name: 'test:outcomes' });
    try {
      const store = createOutcomeStore(client, queue, 3_600);
      const lane = 'l-00112233445566778899aabb';
      const inLane = (i: number): OutcomeRecord => ({ ...outcome(i, 'b-lane'), jobId: `${lane}-${i}`, jobTimestamp: 7_000 });
      // 0 … 99, with 3 and 10 (dead) twice in the same group, and 5 again in a later call.
      const first = await Promise.all(
        [...Array.from({ length: 100 }, (_, i) => inLane(i)), inLane(3), inLane(10)].map((r) => store.record(r)),
      );
      expect(first.slice(0, 100).every(Boolean)).toBe(true);
      expect(first.slice(100)).toEqual([false, false]);
      // Recorded again as the other outcome: not written, and what it ended as stays.
      expect(await store.record({ ...inLane(5), outcome: 'deadLettered', deadLetter: { reason: 'permanent-status' } })).toBe(false);
      expect(await store.record({ ...inLane(20), outcome: 'succeeded', deadLetter: undefined })).toBe(false);

      const batch = await redis().client.hgetall(keys.batch('b-lane'));
      expect(Number(batch.succeeded)).toBe(90);
      expect(Number(batch.deadLettered)).toBe(10);
      expect(await redis().client.hlen(keys.deadLetters)).toBe(10);
      // One marker for the lane (25 bytes: 100 operations × 2 bits), no key per operation.
      const marker = laneMarkerKey(keys, lane, 7_000);
      expect(await redis().client.strlen(marker)).toBe(25);
      expect(await redis().client.pttl(marker)).toBeGreaterThan(60 * 60 * 1_000);
      expect(await redis().client.keys(`${keys.outcome('*')}`)).toEqual([marker]);

      const about = (i: number, timestamp = 7_000) => ({
        jobId: `${lane}-${i}`,
        jobTimestamp: timestamp,
        opId: `op-${i}`,
        batchId: 'b-lane',
      });
      // The batch keeps the line without what its field and its job id give back, and reads it whole.
      expect(await store.recorded(about(5))).toEqual({
        outcome: 'succeeded',
        resultLine: { id: 'op-5', jobId: 'job-5', idempotencyKey: 'sluice-job-5', outcome: 'succeeded', attempts: 1 },
      });
      expect(await store.recorded(about(20))).toEqual({ outcome: 'deadLettered', resultLine: undefined });
      // Another instance of the lane (another timestamp), and an index past the marker's end: not ended.
      expect(await store.recorded(about(5, 8_000))).toBeUndefined();
      expect(await store.recorded({ ...about(400), opId: 'op-400' })).toBeUndefined();
    } finally {
      await closeRedis(client);
    }
  });
});
