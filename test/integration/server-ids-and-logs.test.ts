/**
 * Ids that name a queue's other keys rather than a job (BullMQ's `meta`, `events`, sluice's
 * `batches`, `batch:x`, …) are 404s, never 500s; jobs other clients wrote under their own ids are
 * still found. And credentials in a request's query string never reach the request log.
 */
import { Queue } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { PREFIX, bullQueueName, queueKeyPattern } from '../../src/redis/keys.js';

const redis = useRedisServer();

async function setup(): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis());
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, queueDiscoveryMs: 0 });
  return { p, api };
}

describe('GET /v1/operations/:id with ids that are not jobs', () => {
  it("answers 404 for every other key of the queue, BullMQ's and sluice's, and finds jobs other clients wrote", async () => {
    const { p, api } = await setup();
    p.target.script('POST /gone', [{ status: 404 }]);
    const enqueued = await api.call('/v1/operations?batch=keys-batch', {
      method: 'POST',
      role: 'enqueue',
      json: [p.op('/ok', { idempotencyKey: 'keyed-1' }), p.op('/gone')],
    });
    expect(enqueued.status).toBe(202);
    const { ids } = (await enqueued.json()) as { ids: string[] };
    await p.settled('keys-batch');

    // Every key the queue has in Redis, named as an id relative to the queue's prefix.
    const prefix = `${PREFIX}:{${p.queue}}:`;
    const keys = (await redis().client.keys(queueKeyPattern(p.queue))).map((key) => key.slice(prefix.length));
    const jobs = new Set(ids);
    const notJobs = [
      ...keys.filter((key) => !jobs.has(key)),
      'meta',
      'events',
      'id',
      'wait',
      'batches',
      'batch:keys-batch',
      'dlq',
      'none',
      `${ids[0]}:logs`,
      '1',
      'u-not-a-uuid',
    ];
    expect(keys).toEqual(expect.arrayContaining(['meta', 'events', 'batches', 'dlq', 'dlq:index', 'batch:keys-batch']));
    for (const id of notJobs) {
      const response = await api.call(`/v1/operations/${encodeURIComponent(id)}`, { role: 'read' });
      expect(response.status, id).toBe(404);
      expect(((await response.json()) as { code: string }).code, id).toBe('NOT_FOUND');
    }
    for (const id of ids) expect((await api.call(`/v1/operations/${id}`, { role: 'read' })).status, id).toBe(200);

    // Batch ids that name another key of a batch are no batches either.
    for (const id of ['keys-batch:dlq', 'keys-batch:results', 'keys-batch:dlq:groups']) {
      for (const path of [`/v1/batches/${id}`, `/v1/batches/${id}/results`]) {
        expect((await api.call(path, { role: 'read' })).status, path).toBe(404);
      }
    }
    expect(api.log()).not.toContain('"statusCode":500');
    expect(api.log()).not.toContain('WRONGTYPE');

    // Jobs another client added, with BullMQ's own numeric ids and with custom ones, are found.
    const otherName = uniqueQueue('foreign');
    const other = new Queue(bullQueueName(otherName), { connection: redis().client, prefix: PREFIX });
    onTestFinished(() => other.close());
    const numbered = await other.add('op', { op: { method: 'GET', url: 'https://example.com/a' } });
    const named = await other.add('op', { op: { method: 'GET', url: 'https://example.com/b' } }, { jobId: 'order-42' });
    const legacy = await other.add('op', { op: { method: 'GET', url: 'https://example.com/c' } }, { jobId: 'repeat:abc:1700000000000' });
    for (const job of [numbered, named, legacy]) {
      const found = await api.call(`/v1/operations/${encodeURIComponent(job.id!)}?queue=${otherName}`, { role: 'read' });
      expect(found.status, job.id).toBe(200);
      expect(await found.json()).toMatchObject({ id: job.id, state: 'queued', queue: otherName });
    }
    for (const id of ['meta', 'events', 'id', 'marker', 'prioritized', 'wait', '999']) {
      expect((await api.call(`/v1/operations/${id}?queue=${otherName}`, { role: 'read' })).status, id).toBe(404);
    }
  });
});

describe('the request log', () => {
  it('withholds credentials sent in a query string, whatever the answer', async () => {
    const { api } = await setup();
    const secrets = ['query-token-1', 'query-token-2', 'query-token-3', 'query-token-4', 'query-token-5', 'query-token-6'];
    const requests: [string, Parameters<ApiServer['call']>[1]][] = [
      [`/healthz?token=${secrets[0]}`, { role: null }],
      [`/v1/limits?access_token=${secrets[1]}&page=2`, { role: null }],
      [`/v1/nothing-here?api_key=${secrets[2]}`, { role: 'read' }],
      [`/v1/operations?queue=x&client_secret=${secrets[3]}`, { method: 'POST', role: 'enqueue', json: {} }],
      [`/dashboard/api/queues?x-api-key=${secrets[4]}`, { role: 'admin' }],
      [`/v1/batches?limit=5&ACCESS%5FTOKEN=${secrets[5]}&token`, { role: 'read' }],
    ];
    for (const [path, init] of requests) await api.call(path, init);
    const log = api.log();
    for (const secret of secrets) expect(log).not.toContain(secret);
    expect(log).toContain('/v1/limits?access_token=[redacted]&page=2');
    expect(log).toContain('/healthz?token=[redacted]');
    expect(log).toContain('/v1/batches?limit=5&ACCESS%5FTOKEN=[redacted]&token');
  });
});
