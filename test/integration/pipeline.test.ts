import { describe, expect, it } from 'vitest';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

describe('retries', () => {
  it('retries 503, 503 and succeeds on the third attempt with the same idempotency key', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /flaky', [{ status: 503 }, { status: 503, body: 'busy' }, { status: 200, json: { id: 'r-1' } }]);
    const batchId = 'retry-1';
    const { id } = await p.producer.enqueue(p.op('/flaky', { meta: { row: 7 } }), { batchId });

    expect(await p.settled(batchId)).toMatchObject({ total: 1, succeeded: 1, deadLettered: 0, pending: 0, retries: 2 });
    const requests = p.requestsTo('/flaky');
    expect(requests).toHaveLength(3);
    const keys = new Set(requests.map((request) => request.headers['idempotency-key']));
    expect(keys).toEqual(new Set([`sluice-${id}`]));

    const lines = await p.results(batchId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      id,
      jobId: id,
      outcome: 'succeeded',
      status: 200,
      attempts: 3,
      meta: { row: 7 },
      result: { body: { id: 'r-1' }, bodyTruncated: false },
    });
    // When it ended: after its last request arrived.
    expect(Date.parse(lines[0]!.finishedAt!)).toBeGreaterThanOrEqual(Math.floor(requests.at(-1)!.startedAt));
    expect(await p.deadLetters.count()).toBe(0);
  });

  it('waits at least Retry-After before the next attempt, whatever the backoff says', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /busy', [
      { status: 503, headers: { 'retry-after': '2' } },
      { status: 200, json: {} },
    ]);
    const batchId = 'retry-after';
    await p.producer.enqueue(p.op('/busy', { retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 } }), { batchId });

    expect(await p.settled(batchId)).toMatchObject({ succeeded: 1, retries: 1 });
    const [first, second] = p.requestsTo('/busy');
    expect(second!.startedAt - first!.startedAt).toBeGreaterThanOrEqual(2_000);
  });
});

describe('jobs written by other BullMQ clients', () => {
  it('runs a bare operation written as the job data', async () => {
    const p = await startPipeline(redis());
    const job = await p.bullQueue().add('op', { method: 'PUT', url: `${p.target.url}/bare`, json: { from: 'python' }, meta: 'bare' });
    const keyed = await p.bullQueue().add('op', { method: 'POST', url: `${p.target.url}/bare-keyed`, idempotencyKey: 'their-key' });

    const state = (jobId: string) => p.bullQueue().getJobState(jobId);
    await waitFor(async () => (await state(job.id!)) === 'completed' && (await state(keyed.id!)) === 'completed', {
      what: 'both jobs to complete',
    });

    const [request] = p.requestsTo('/bare');
    expect(request).toMatchObject({ method: 'PUT', body: '{"from":"python"}' });
    // Another client's job ids are counters that restart with a new queue: the key names the queue and the job instance.
    expect(request!.headers['idempotency-key']).toBe(`sluice-${p.queue}-${job.id}-${job.timestamp}`);
    expect(p.requestsTo('/bare-keyed')[0]!.headers['idempotency-key']).toBe('their-key');
    const completed = await p.bullQueue().getJob(job.id!);
    expect(completed?.returnvalue).toMatchObject({ outcome: 'succeeded', status: 200, attempts: 1, meta: 'bare' });
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight request finish before close() resolves', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /slow', [{ status: 200, delayMs: 800, json: { done: true } }]);
    const batchId = 'drain';
    const { id } = await p.producer.enqueue(p.op('/slow'), { batchId });
    await waitFor(() => p.target.inFlight() === 1, { what: 'the request to be in flight' });

    await p.worker.close();

    const [request] = p.requestsTo('/slow');
    expect(request!.endedAt).toBeDefined();
    expect(await p.bullQueue().getJobState(id)).toBe('completed');
    expect(await p.batches.status(batchId)).toMatchObject({ succeeded: 1, pending: 0 });
  });

  it('aborts a request past the shutdown deadline and requeues its job without spending an attempt', async () => {
    const p = await startPipeline(redis(), { shutdownTimeoutMs: 100 });
    p.target.script('POST /stuck', [{ status: 200, delayMs: 5_000 }]);
    const batchId = 'abort';
    const { id } = await p.producer.enqueue(p.op('/stuck', { retry: { attempts: 1 } }), { batchId });
    await waitFor(() => p.target.inFlight() === 1, { what: 'the request to be in flight' });

    const started = Date.now();
    await p.worker.close();
    expect(Date.now() - started).toBeLessThan(3_000);

    // Not dead-lettered (even with a budget of one attempt): back in the queue.
    expect(await p.deadLetters.count()).toBe(0);
    expect(['delayed', 'waiting']).toContain(await p.bullQueue().getJobState(id));
    expect(await p.batches.status(batchId)).toMatchObject({ succeeded: 0, deadLettered: 0, pending: 1, retries: 0 });

    p.target.script('POST /stuck', [{ status: 200, json: { second: true } }]);
    await p.startWorker();
    expect(await p.settled(batchId)).toMatchObject({ succeeded: 1, deadLettered: 0, retries: 0 });
    const requests = p.requestsTo('/stuck');
    expect(requests).toHaveLength(2);
    expect(requests[1]!.headers['idempotency-key']).toBe(requests[0]!.headers['idempotency-key']);
    const [line] = await p.results(batchId);
    expect(line).toMatchObject({ outcome: 'succeeded', attempts: 1, result: { body: { second: true } } });
  });
});
