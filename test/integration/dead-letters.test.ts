import { describe, expect, it } from 'vitest';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';
import { queueKeys } from '../../src/redis/keys.js';
import { replayIdOf } from '../helpers/replay-id.js';

const redis = useRedisServer();

/** Waits until the job is failed in BullMQ: it will never run again. */
function failedForGood(p: Pipeline, jobId: string): Promise<boolean> {
  return waitFor(async () => (await p.bullQueue().getJobState(jobId)) === 'failed', { what: `job ${jobId} to fail` });
}

describe('dead letters', () => {
  it('dead-letters a 404 after exactly one request', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /missing', [{ status: 404, json: { error: 'no such order' } }]);
    const batchId = 'dl-404';
    const { id } = await p.producer.enqueue(p.op('/missing'), { batchId });

    expect(await p.settled(batchId)).toMatchObject({ total: 1, succeeded: 0, deadLettered: 1, pending: 0, retries: 0 });
    await failedForGood(p, id);
    expect(p.requestsTo('/missing')).toHaveLength(1);

    const letter = await p.deadLetters.get(id);
    expect(letter).toMatchObject({
      id,
      opId: id,
      batchId,
      reason: 'permanent-status',
      status: 404,
      method: 'POST',
      url: `${p.target.url}/missing`,
    });
    expect(letter!.attempts).toHaveLength(1);
    expect(letter!.attempts[0]).toMatchObject({ status: 404, error: 'HTTP_404', excerpt: '{"error":"no such order"}' });
    const [line] = await p.results(batchId);
    expect(line).toMatchObject({
      outcome: 'deadLettered',
      reason: 'permanent-status',
      status: 404,
      attempts: 1,
      excerpt: '{"error":"no such order"}',
    });
  });

  it('dead-letters after the attempt budget is spent, recording every attempt', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /down', [{ status: 503, body: 'down for maintenance' }]);
    const batchId = 'dl-spent';
    const { id } = await p.producer.enqueue(p.op('/down', { retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 } }), { batchId });

    expect(await p.settled(batchId)).toMatchObject({ deadLettered: 1, pending: 0, retries: 2 });
    await failedForGood(p, id);
    expect(p.requestsTo('/down')).toHaveLength(3);

    const letter = await p.deadLetters.get(id);
    expect(letter).toMatchObject({ reason: 'attempts-exhausted', status: 503 });
    expect(letter!.attempts).toHaveLength(3);
    for (const attempt of letter!.attempts) {
      expect(attempt).toMatchObject({ status: 503, error: 'HTTP_503', excerpt: 'down for maintenance' });
      expect(Number.isNaN(Date.parse(attempt.at))).toBe(false);
      expect(attempt.durationMs).toBeGreaterThanOrEqual(0);
    }
    const starts = letter!.attempts.map((attempt) => Date.parse(attempt.at));
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
  });

  it('retries a request past its total timeout, then dead-letters it as a timeout', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /hang', [{ status: 200, delayMs: 3_000 }]);
    const batchId = 'dl-timeout';
    const op = p.op('/hang', { timeoutMs: { total: 200 }, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    const { id } = await p.producer.enqueue(op, { batchId });

    expect(await p.settled(batchId)).toMatchObject({ deadLettered: 1, retries: 1 });
    expect(p.requestsTo('/hang')).toHaveLength(2);
    const letter = await p.deadLetters.get(id);
    expect(letter).toMatchObject({ reason: 'timeout' });
    expect(letter!.status).toBeUndefined();
    expect(letter!.attempts.map((attempt) => attempt.error)).toEqual(['TIMEOUT_TOTAL', 'TIMEOUT_TOTAL']);
    for (const attempt of letter!.attempts) expect(attempt.durationMs).toBeLessThan(3_000);
  });

  it('replays a dead letter with the same idempotency key and updates the batch', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /later', [{ status: 404 }]);
    const batchId = 'dl-replay';
    const { id } = await p.producer.enqueue(p.op('/later', { meta: { row: 1 } }), { batchId });
    expect(await p.settled(batchId)).toMatchObject({ deadLettered: 1, succeeded: 0 });

    // Still failing: the replay becomes a dead letter of its own, counted once.
    const r1 = await replayIdOf(p.deadLetters, id);
    expect(r1).toMatch(new RegExp(`^${id}\\.r1-[0-9a-z]{8}$`));
    expect(await p.deadLetters.replay([id, 'no-such-id'])).toEqual({ replayed: [{ id, jobId: r1 }], missing: ['no-such-id'] });
    const again = await waitFor(() => p.deadLetters.get(r1), { what: 'the replay to be dead-lettered' });
    expect(again).toMatchObject({ opId: id, replays: 1, reason: 'permanent-status', idempotencyKey: `sluice-${id}` });
    expect(await p.deadLetters.ids()).toEqual([r1]);
    expect(await p.batches.status(batchId)).toMatchObject({ total: 1, succeeded: 0, deadLettered: 1, pending: 0 });

    p.target.script('POST /later', [{ status: 201, json: { created: true } }]);
    const r2 = await replayIdOf(p.deadLetters, r1);
    expect(r2).toMatch(new RegExp(`^${id}\\.r2-[0-9a-z]{8}$`));
    expect(await p.deadLetters.replay([r1])).toEqual({ replayed: [{ id: r1, jobId: r2 }], missing: [] });
    const status = await waitFor(
      async () => {
        const current = await p.batches.status(batchId);
        return current?.succeeded === 1 && current.deadLettered === 0 ? current : undefined;
      },
      { what: 'the replayed operation to succeed' },
    );
    expect(status).toMatchObject({ total: 1, succeeded: 1, deadLettered: 0, pending: 0 });
    const keys = p.requestsTo('/later').map((request) => request.headers['idempotency-key']);
    expect(keys).toEqual([`sluice-${id}`, `sluice-${id}`, `sluice-${id}`]);
    expect(await p.deadLetters.get(r1)).toBeUndefined();
    expect(await p.deadLetters.count()).toBe(0);
    expect(await p.deadLetters.ids({ batchId })).toEqual([]);

    // One line per operation, now the success.
    const lines = await p.results(batchId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ id, jobId: r2, outcome: 'succeeded', status: 201, attempts: 1, meta: { row: 1 } });
  });

  it('a replay whose job ran and was removed is not sent again by a replay that finds its dead letter still listed (one cut short, or two at once)', async () => {
    // Completed jobs are not kept: the job id alone cannot tell that the replay's job was added.
    const p = await startPipeline(redis(), { keepCompletedSeconds: 0 });
    p.target.script('POST /once', [{ status: 404 }, { status: 201, json: { created: true } }]);
    const batchId = 'dl-once';
    const { id } = await p.producer.enqueue(p.op('/once'), { batchId });
    expect(await p.settled(batchId)).toMatchObject({ deadLettered: 1 });
    const client = redis().client;
    const keys = queueKeys(p.queue);
    // What a replay's last step removes, as it is before the replay.
    const held = [
      keys.deadLetters,
      keys.deadLetterIndex,
      keys.deadLetterGroups,
      keys.batchDeadLetters(batchId),
      keys.batchDeadLetterGroups(batchId),
    ];
    const dumps = await Promise.all(held.map((key) => client.dumpBuffer(key)));

    const r1 = await replayIdOf(p.deadLetters, id);
    expect(await p.deadLetters.replay([id])).toEqual({ replayed: [{ id, jobId: r1 }], missing: [] });
    await waitFor(async () => (await p.batches.status(batchId))?.succeeded === 1, { what: 'the replay to succeed' });
    expect(await p.bullQueue().getJob(r1)).toBeUndefined();
    // As a replay cut short before its last step left it, or as a second replay finds it when it
    // began before the first one's last step: the dead letter listed, its replay under way.
    for (const [i, key] of held.entries()) await client.restore(key, 0, dumps[i]!, 'REPLACE');
    await client.sadd(keys.replaying, id);
    expect(await p.deadLetters.replay([id])).toEqual({ replayed: [{ id, jobId: r1 }], missing: [] });
    // An operation enqueued after it runs after any job the replay added (same priority, first in first out).
    await p.producer.enqueue(p.op('/after'), { batchId: 'dl-once-after' });
    await p.settled('dl-once-after');
    expect(p.requestsTo('/once')).toHaveLength(2);
    expect(await p.batches.status(batchId)).toMatchObject({ total: 1, succeeded: 1, deadLettered: 0, pending: 0 });
    expect(await p.deadLetters.count()).toBe(0);
  });

  it('the dead letter of an operation id that came back (a key enqueued again after its window) is replayed, not taken for the earlier one', async () => {
    // Nothing kept of finished jobs: the key's job is gone once it died, and so is its replay's.
    const p = await startPipeline(redis(), { keepCompletedSeconds: 0, keepFailedSeconds: 0 }, { dedupWindowSeconds: 1 });
    const op = { ...p.op('/again'), idempotencyKey: 'order-1' };
    const died = async (batchId: string) => {
      p.target.script('POST /again', [{ status: 400 }]);
      const { id } = await p.producer.enqueue(op, { batchId });
      expect(await p.settled(batchId)).toMatchObject({ deadLettered: 1 });
      return id;
    };
    const replayed = async (id: string, batchId: string) => {
      p.target.script('POST /again', [{ status: 201 }]);
      const jobId = await replayIdOf(p.deadLetters, id);
      expect(await p.deadLetters.replay([id])).toEqual({ replayed: [{ id, jobId }], missing: [] });
      expect(await p.settled(batchId)).toMatchObject({ succeeded: 1, deadLettered: 0, pending: 0 });
      return jobId;
    };
    const id = await died('again-1');
    const first = await replayed(id, 'again-1');
    // Once the key's window is over, the same key is the same operation id, in another batch.
    await waitFor(async () => (await redis().client.exists(queueKeys(p.queue).idempotency('order-1'))) === 0, {
      what: 'the key to be free',
    });
    expect(await died('again-2')).toBe(id);
    const second = await replayed(id, 'again-2');
    expect(second).not.toBe(first);
    expect(p.requestsTo('/again').map((request) => request.headers['idempotency-key'])).toEqual([
      'order-1',
      'order-1',
      'order-1',
      'order-1',
    ]);
  });
});

describe('invalid jobs written by other clients', () => {
  it('dead-letters them without a request, naming the field, and keeps working', async () => {
    const p = await startPipeline(redis(), { concurrency: 1 });
    const queue = p.bullQueue();
    const noUrl = await queue.add('op', { method: 'GET' });
    const typo = await queue.add('op', { op: { method: 'POST', url: `${p.target.url}/x`, retyr: { attempts: 2 } } });
    const valid = await queue.add('op', { op: { method: 'POST', url: `${p.target.url}/valid` } });

    await waitFor(async () => (await queue.getJobState(valid.id!)) === 'completed', { what: 'the valid job to complete' });
    await failedForGood(p, noUrl.id!);
    await failedForGood(p, typo.id!);
    expect(p.target.requests.map((request) => request.path)).toEqual(['/valid']);

    const missing = await p.deadLetters.get(noUrl.id!);
    expect(missing).toMatchObject({ reason: 'invalid-operation', operation: { method: 'GET' }, attempts: [] });
    expect(missing!.message).toMatch(/^url: /m);
    const misspelt = await p.deadLetters.get(typo.id!);
    expect(misspelt).toMatchObject({ reason: 'invalid-operation' });
    expect(misspelt!.message).toContain('retyr: unknown field');
  });
});

describe('the dead-letter store', () => {
  it('lists with filters, gets, lists ids and purges', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /gone', [{ status: 410 }]);
    p.target.script('POST /nope', [{ status: 404 }]);
    p.target.script('POST /busy', [{ status: 503 }]);
    const a = await p.producer.enqueueMany([p.op('/gone'), p.op('/nope')], { batchId: 'dlq-a' });
    const b = await p.producer.enqueueMany([p.op('/busy', { retry: { attempts: 1 }, limitKey: 'busy-api' })], { batchId: 'dlq-b' });
    await p.settled('dlq-a');
    await p.settled('dlq-b');
    const [gone, nope] = a.results.map((result) => result.id);
    const [busy] = b.results.map((result) => result.id);

    const all = await p.deadLetters.list();
    expect(all.map((letter) => letter.id).sort()).toEqual([gone, nope, busy].sort());
    const times = all.map((letter) => Date.parse(letter.deadLetteredAt));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(await p.deadLetters.list({}, { limit: 2 })).toHaveLength(2);

    const ids = async (filter: Parameters<Pipeline['deadLetters']['list']>[0]) =>
      (await p.deadLetters.list(filter)).map((letter) => letter.id).sort();
    expect(await ids({ batchId: 'dlq-a' })).toEqual([gone, nope].sort());
    expect(await ids({ batchId: 'dlq-b' })).toEqual([busy]);
    expect(await ids({ reason: 'attempts-exhausted' })).toEqual([busy]);
    expect(await ids({ reason: 'permanent-status', status: 410 })).toEqual([gone]);
    expect(await ids({ batchId: 'dlq-a', status: 404 })).toEqual([nope]);
    expect(await ids({ limitKey: 'busy-api' })).toEqual([busy]);
    expect(await ids({ batchId: 'no-such-batch' })).toEqual([]);
    expect((await p.deadLetters.ids({ batchId: 'dlq-a' })).sort()).toEqual([gone, nope].sort());

    expect(await p.deadLetters.get(busy!)).toMatchObject({
      id: busy,
      queue: p.queue,
      batchId: 'dlq-b',
      limitKey: 'busy-api',
      reason: 'attempts-exhausted',
      status: 503,
      replays: 0,
      operation: p.op('/busy', { retry: { attempts: 1 }, limitKey: 'busy-api' }),
    });
    expect(await p.deadLetters.get('no-such-id')).toBeUndefined();

    expect(await p.deadLetters.purge([gone!, 'no-such-id'])).toBe(1);
    expect(await p.deadLetters.purge([gone!])).toBe(0);
    expect(await p.deadLetters.get(gone!)).toBeUndefined();
    expect(await p.deadLetters.count()).toBe(2);
    expect(await p.deadLetters.ids({ batchId: 'dlq-a' })).toEqual([nope]);
    expect((await p.deadLetters.ids()).sort()).toEqual([nope, busy].sort());
  });
});
