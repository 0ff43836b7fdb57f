/**
 * bull-board's admin actions that would remove unfinished jobs behind their batches' backs (empty,
 * obliterate, clean of waiting or delayed jobs) are refused with 409; cleaning finished jobs still
 * works. And what bull-board shows of a failure — its reason, stack trace and job logs — is redacted
 * as job data is.
 */
import { Queue, Worker } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { PREFIX, bullQueueName } from '../../src/redis/keys.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';

const redis = useRedisServer();
const admin = { authorization: `Bearer ${TOKENS.admin}` };

async function setup(): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis());
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, queueDiscoveryMs: 0 });
  return { p, api };
}

const board = (api: ApiServer, path: string, init: RequestInit = {}) =>
  fetch(`${api.url}/dashboard${path}`, { ...init, headers: { ...admin, ...(init.headers as Record<string, string>) } });

describe('bull-board admin actions and batches', () => {
  it('refuses empty, obliterate and cleaning unfinished jobs with 409 (the batch would wait forever); cleaning finished jobs works', async () => {
    const { p, api } = await setup();
    // A queue no worker serves: its batch stays pending, its jobs waiting and delayed.
    const idle = uniqueQueue('idle');
    const enqueued = await api.call(`/v1/operations?queue=${idle}&batch=stuck`, {
      method: 'POST',
      role: 'enqueue',
      json: [p.op('/a'), p.op('/b'), p.op('/c')],
    });
    expect(enqueued.status).toBe(202);
    const { ids } = (await enqueued.json()) as { ids: string[] };
    const idleQueue = new Queue(bullQueueName(idle), { connection: redis().client, prefix: PREFIX });
    onTestFinished(() => idleQueue.close());
    await idleQueue.add('op', { op: p.op('/later') }, { delay: 600_000 });
    const q = encodeURIComponent(bullQueueName(idle));

    const refusals: string[] = [
      `/api/queues/${q}/empty`,
      `/api/queues/${q}/obliterate`,
      `/api/queues/${q}/obliterate?force=true`,
      ...['waiting', 'wait', 'prioritized', 'delayed', 'paused', 'active', 'waiting-children', 'latest'].map(
        (status) => `/api/queues/${q}/clean/${status}`,
      ),
      `/api/queues/${q}/${ids[0]}/clean`,
    ];
    for (const path of refusals) {
      const refused = await board(api, path, { method: 'PUT' });
      expect(refused.status, path).toBe(409);
      const body = (await refused.json()) as { code: string; message: string };
      expect(body.code, path).toBe('WOULD_STRAND_BATCHES');
      expect(body.message).toContain('pause');
    }
    expect(await idleQueue.getJobCountByTypes('prioritized', 'waiting', 'delayed')).toBe(4);
    const batch = (await (await api.call(`/v1/batches/stuck?queue=${idle}`, { role: 'read' })).json()) as { pending: number };
    expect(batch.pending).toBe(3);

    // Finished jobs are already counted in their batches: cleaning them is fine.
    p.target.script('POST /bad', [{ status: 422 }]);
    const done = await api.call('/v1/operations?batch=finished', { method: 'POST', role: 'enqueue', json: [p.op('/ok'), p.op('/bad')] });
    expect(done.status).toBe(202);
    await p.settled('finished');
    const mine = encodeURIComponent(bullQueueName(p.queue));
    for (const status of ['completed', 'failed']) {
      const cleaned = await board(api, `/api/queues/${mine}/clean/${status}`, { method: 'PUT' });
      expect(cleaned.status, status).toBe(200);
    }
    // Pausing is what stops a queue; it removes nothing.
    expect((await board(api, `/api/queues/${q}/pause`, { method: 'PUT' })).ok).toBe(true);
    expect(await idleQueue.isPaused()).toBe(true);
  });
});

describe('bull-board shows failures redacted', () => {
  it("withholds credentials in a failed job's reason, stack trace and logs, on both boards", async () => {
    const { api } = await setup();
    const name = uniqueQueue('failing');
    const queue = new Queue(bullQueueName(name), { connection: redis().client, prefix: PREFIX });
    onTestFinished(() => queue.close());
    const connection = createRedisConnection(redis().url, { name: 'test-failing-worker', maxRetriesPerRequest: null });
    const worker = new Worker(
      bullQueueName(name),
      async (job) => {
        await job.log('calling https://api.example.com/v1/x?api_key=log-secret-1&page=2 with Authorization: Bearer log-secret-2');
        await job.log('{"password":"log-secret-3","user":"ann"}');
        throw new Error(
          'POST https://user:url-password-secret@api.example.com/v1/x?token=reason-secret-1 failed: ' +
            '{"client_secret":"reason-secret-2"} (Authorization: Bearer reason-secret-3, api_key=reason-secret-4)',
        );
      },
      { connection, prefix: PREFIX },
    );
    onTestFinished(async () => {
      await worker.close();
      await closeRedis(connection);
    });
    const job = await queue.add('op', { op: { method: 'POST', url: 'https://api.example.com/v1/x' } });
    await waitFor(async () => (await queue.getFailedCount()) === 1, { what: 'the job to fail' });

    const q = encodeURIComponent(bullQueueName(name));
    const secrets = [
      'log-secret-1',
      'log-secret-2',
      'log-secret-3',
      'url-password-secret',
      'reason-secret-1',
      'reason-secret-2',
      'reason-secret-3',
      'reason-secret-4',
    ];
    for (const base of ['', '/read-only']) {
      for (const path of [
        `/api/queues/${q}/${job.id}`,
        `/api/queues?activeQueue=${q}&status=failed&page=1`,
        `/api/queues/${q}/${job.id}/logs`,
      ]) {
        const response = await board(api, `${base}${path}`);
        expect(response.status, path).toBe(200);
        const text = await response.text();
        for (const secret of secrets) expect(text, `${base}${path} shows ${secret}`).not.toContain(secret);
        expect(text, path).toContain('[redacted]');
        expect(text, path).toContain('api.example.com/v1/x');
      }
    }
    const shown = (await (await board(api, `/api/queues/${q}/${job.id}`)).json()) as {
      job: { failedReason: string; stacktrace: string[] };
    };
    expect(shown.job.failedReason).toBe(
      'POST https://user:redacted@api.example.com/v1/x?token=[redacted] failed: ' +
        '{"client_secret":"[redacted]"} (Authorization: [redacted], api_key=[redacted])',
    );
    expect(shown.job.stacktrace.join('\n')).toContain('token=[redacted]');
    const logs = (await (await board(api, `/api/queues/${q}/${job.id}/logs`)).json()) as string[];
    expect(logs).toEqual([
      'calling https://api.example.com/v1/x?api_key=[redacted]&page=2 with Authorization: [redacted]',
      '{"password":"[redacted]","user":"ann"}',
    ]);
  });
});
