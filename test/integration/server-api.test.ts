import { describe, expect, it } from 'vitest';
import { queuedOperations, useRedisServer, waitFor } from '../helpers/redis.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { createFleetMetrics } from '../../src/observability/fleet-metrics.js';
import { discoverQueues } from '../../src/queue/discover-queues.js';
import { uniqueQueue } from '../helpers/redis.js';

const redis = useRedisServer();

async function setup(extra: { bodyLimitBytes?: number } = {}): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis());
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, ...extra });
  return { p, api };
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

async function followBatch(api: ApiServer, batchId: string): Promise<Record<string, unknown>> {
  const done = await waitFor(
    async () => {
      const body = await json(await api.call(`/v1/batches/${batchId}`, { role: 'read' }));
      return body['done'] === true ? body : undefined;
    },
    { timeoutMs: 15_000, what: `batch ${batchId} to be done` },
  );
  return done!;
}

describe('HTTP API: tokens and roles', () => {
  it('refuses a missing or unknown token with 401, and a too-small role with 403, as JSON with a stable code', async () => {
    const { api } = await setup();
    const missing = await api.call('/v1/limits', { role: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect((await json(missing))['code']).toBe('UNAUTHORIZED');

    const wrong = await api.call('/v1/limits', { role: null, headers: { authorization: 'Bearer not-a-real-token-at-all' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(await json(wrong)).toEqual({
      type: '/problems/unauthorized',
      title: 'Missing or unknown token',
      status: 401,
      detail: 'unknown token',
      instance: '/v1/limits',
      code: 'UNAUTHORIZED',
      message: 'unknown token',
    });

    const notBearer = await api.call('/v1/limits', { role: null, headers: { authorization: `Basic ${TOKENS.admin}` } });
    expect(notBearer.status).toBe(401);

    const readEnqueues = await api.call('/v1/operations', {
      method: 'POST',
      role: 'read',
      json: { method: 'GET', url: 'https://example.com/' },
    });
    expect(readEnqueues.status).toBe(403);
    expect((await json(readEnqueues))['code']).toBe('FORBIDDEN');

    const enqueueReplays = await api.call('/v1/dead-letters/replay', { method: 'POST', role: 'enqueue', json: { ids: ['x'] } });
    expect(enqueueReplays.status).toBe(403);
    const enqueueReads = await api.call('/v1/limits', { role: 'enqueue' });
    expect(enqueueReads.status).toBe(200);

    // Health needs no token; nothing the server logged holds a token.
    expect((await api.call('/healthz', { role: null })).status).toBe(200);
    expect((await api.call('/readyz', { role: null })).status).toBe(200);
    const log = api.log();
    expect(log).toContain('"status":401');
    for (const token of [...Object.values(TOKENS), 'not-a-real-token-at-all']) expect(log).not.toContain(token);
  });

  it('takes the token from the dashboard cookie, but a change made by cookie needs the CSRF header', async () => {
    const { api } = await setup();
    const cookie = { cookie: await api.signIn('admin') };
    expect((await api.call('/v1/limits', { role: null, headers: cookie })).status).toBe(200);
    const put = (headers: Record<string, string>) =>
      api.call('/v1/limits/some-key', { method: 'PUT', role: null, headers, json: { rps: 5 } });
    const forged = await put(cookie);
    expect(forged.status).toBe(403);
    expect((await json(forged))['message']).toContain('x-sluice-request');
    expect((await put({ ...cookie, 'x-sluice-request': '1' })).status).toBe(200);
  });
});

describe('HTTP API: enqueue and follow', () => {
  it('enqueues a JSON array, follows the batch to its end and streams its results', async () => {
    const { p, api } = await setup();
    const operations = [p.op('/a', { meta: { row: 1 } }), p.op('/b', { idempotencyKey: 'b-1' }), p.op('/b', { idempotencyKey: 'b-1' })];
    const response = await api.call('/v1/operations?batch=api-batch-1', { method: 'POST', role: 'enqueue', json: operations });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toBe('/v1/batches/api-batch-1');
    const body = await json(response);
    expect(body).toMatchObject({ batchId: 'api-batch-1', enqueued: 2, duplicates: 1 });
    const ids = body['ids'] as string[];
    expect(ids).toHaveLength(3);
    expect(ids[2]).toBe(ids[1]);

    const done = await followBatch(api, 'api-batch-1');
    expect(done).toMatchObject({ total: 2, succeeded: 2, deadLettered: 0, pending: 0, enqueuing: false });

    const results = await api.call('/v1/batches/api-batch-1/results', { role: 'read' });
    expect(results.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await results.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line['outcome'])).toEqual(['succeeded', 'succeeded']);
    expect(lines.find((line) => line['id'] === ids[0])?.['meta']).toEqual({ row: 1 });

    const listed = (await (await api.call('/v1/batches?limit=5', { role: 'read' })).json()) as {
      items: { batchId: string; done: boolean }[];
      nextCursor: string | null;
    };
    expect(listed.items.map((batch) => [batch.batchId, batch.done])).toEqual([['api-batch-1', true]]);
    expect(listed.nextCursor).toBeNull();

    const state = await json(await api.call(`/v1/operations/${ids[0]}`, { role: 'read' }));
    expect(state).toMatchObject({ id: ids[0], state: 'succeeded', batchId: 'api-batch-1', failedAttempts: [] });
    expect((state['result'] as { status: number }).status).toBe(200);
    expect(p.requestsTo('/a')).toHaveLength(1);
    expect(p.requestsTo('/b')).toHaveLength(1);
  });

  it('streams NDJSON in, and is all-or-nothing: one bad line → 400 naming every problem by index and line, nothing enqueued', async () => {
    const { p, api } = await setup();
    const good = JSON.stringify(p.op('/n'));
    const bad = `${good}\n\n{"method":"POST"}\nnot json\n${JSON.stringify(p.op('/n', { retry: { attempts: 0 } }))}\n`;
    const refused = await api.call('/v1/operations?batch=nd-bad', {
      method: 'POST',
      role: 'enqueue',
      body: bad,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(refused.status).toBe(400);
    const problem = await json(refused);
    expect(problem['code']).toBe('VALIDATION_FAILED');
    expect(problem['message']).toBe('3 of 4 operations are invalid; nothing was enqueued');
    expect(problem['errors']).toEqual([
      { index: 1, line: 3, path: 'url', message: expect.any(String) },
      { index: 2, line: 4, path: '', message: expect.stringContaining('not JSON') },
      { index: 3, line: 5, path: 'retry.attempts', message: expect.any(String) },
    ]);
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
    expect((await api.call('/v1/batches/nd-bad', { role: 'read' })).status).toBe(404);

    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify(p.op(`/n/${i}`))).join('\r\n');
    const accepted = await api.call('/v1/operations', {
      method: 'POST',
      role: 'enqueue',
      body: lines,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(accepted.status).toBe(202);
    const { batchId, enqueued } = await json(accepted);
    expect(enqueued).toBe(300);
    expect(await followBatch(api, batchId as string)).toMatchObject({ total: 300, succeeded: 300 });
  });

  it('answers bad bodies with clear JSON errors: empty, not JSON, wrong media type, too large, unknown query field', async () => {
    const { p, api } = await setup({ bodyLimitBytes: 2_048 });
    const post = (body: string, type: string, query = '') =>
      api.call(`/v1/operations${query}`, { method: 'POST', body, headers: { 'content-type': type } });
    const cases: [Response, number, string][] = [
      [await post('[]', 'application/json'), 400, 'VALIDATION_FAILED'],
      [await post('{"method":', 'application/json'), 400, 'BAD_JSON'],
      [await post('hello', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [await post(JSON.stringify(Array.from({ length: 40 }, () => p.op('/big'))), 'application/json'), 413, 'BODY_TOO_LARGE'],
      [
        await post(Array.from({ length: 40 }, () => JSON.stringify(p.op('/big'))).join('\n'), 'application/x-ndjson'),
        413,
        'BODY_TOO_LARGE',
      ],
      [await post(JSON.stringify(p.op('/q')), 'application/json', '?batch=has space'), 400, 'VALIDATION_FAILED'],
      [await post(JSON.stringify(p.op('/q')), 'application/json', '?queue=a/b'), 400, 'VALIDATION_FAILED'],
      [await post(JSON.stringify(p.op('/q')), 'application/json', '?bacth=x'), 400, 'VALIDATION_FAILED'],
    ];
    for (const [response, status, code] of cases) {
      expect(response.status).toBe(status);
      expect((await json(response))['code']).toBe(code);
    }
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
    const unknown = await api.call('/v1/operations/no-such-job', { role: 'read' });
    expect(unknown.status).toBe(404);
    expect((await json(unknown))['code']).toBe('NOT_FOUND');
    expect((await api.call('/v1/nothing-here')).status).toBe(404);
  });
});

describe('HTTP API: dead letters and limits', () => {
  it('groups dead letters by (limit key, status, reason), replays one group by filter and deletes by id', async () => {
    const { p, api } = await setup();
    p.target.script('POST /gone', [{ status: 404 }, { status: 200, json: { back: true } }]);
    p.target.script('POST /unprocessable', [{ status: 422 }]);
    const operations = [p.op('/gone'), p.op('/unprocessable'), p.op('/unprocessable')];
    const { batchId } = await json(await api.call('/v1/operations', { method: 'POST', json: operations }));
    expect(await followBatch(api, batchId as string)).toMatchObject({ deadLettered: 3 });

    const listing = await json(await api.call(`/v1/dead-letters?batch=${batchId as string}&limit=1`, { role: 'read' }));
    expect(listing['total']).toBe(3);
    expect(listing['items']).toHaveLength(1);
    const groups = listing['groups'] as { status: number; reason: string; count: number; limitKey: string }[];
    expect(groups.map((g) => [g.status, g.reason, g.count])).toEqual([
      [422, 'permanent-status', 2],
      [404, 'permanent-status', 1],
    ]);
    const only404 = await json(await api.call('/v1/dead-letters?status=404', { role: 'read' }));
    expect(only404['total']).toBe(1);

    const group = groups[1]!;
    const replay = await api.call('/v1/dead-letters/replay', {
      method: 'POST',
      json: { filter: { limitKey: group.limitKey, status: group.status, reason: group.reason } },
    });
    expect(replay.status).toBe(200);
    const replayed = await json(replay);
    expect(replayed).toMatchObject({ replayed: 1, missing: [] });
    const after = await followBatch(api, batchId as string);
    expect(after).toMatchObject({ total: 3, succeeded: 1, deadLettered: 2 });

    const remaining = (await json(await api.call('/v1/dead-letters', { role: 'read' })))['items'] as { id: string }[];
    const purge = await api.call('/v1/dead-letters', { method: 'DELETE', json: { ids: [remaining[0]!.id, 'no-such-id'] } });
    expect(await json(purge)).toEqual({ purged: 1, remaining: 0 });
    expect((await json(await api.call('/v1/dead-letters', { role: 'read' })))['total']).toBe(1);

    const badSelection = await api.call('/v1/dead-letters/replay', { method: 'POST', json: { ids: [], filter: {} } });
    expect(badSelection.status).toBe(400);
  });

  it("lists and changes limits with the CLI's semantics, naming the bad field", async () => {
    const { api } = await setup();
    const set = await api.call('/v1/limits/partner-api', { method: 'PUT', json: { rpm: 120, burst: 3, ttl: '5m' } });
    expect(set.status).toBe(200);
    const changed = await json(set);
    expect(changed['limit']).toMatchObject({ key: 'partner-api', override: { rate: 2, burst: 3, concurrency: null } });
    expect((changed['limit'] as { override: { expiresInMs: number } }).override.expiresInMs).toBeGreaterThan(290_000);

    const both = await api.call('/v1/limits/partner-api', { method: 'PUT', json: { rps: 1, rpm: 60 } });
    expect(both.status).toBe(400);
    expect((await json(both))['errors']).toEqual([{ path: '', message: 'give rps or rpm, not both' }]);
    const badTtl = await json(await api.call('/v1/limits/partner-api', { method: 'PUT', json: { rps: 1, ttl: 'forever' } }));
    expect(badTtl['errors']).toEqual([{ path: 'ttl', message: 'expected a duration such as 90s, 5m, 2h or 1d' }]);
    const typo = await json(await api.call('/v1/limits/partner-api', { method: 'PUT', json: { rsp: 1 } }));
    expect(typo['errors']).toEqual([{ path: 'body.rsp', message: 'unknown field' }]);

    expect((await api.call('/v1/limits/partner-api/pause', { method: 'POST' })).status).toBe(200);
    const listed = (await json(await api.call('/v1/limits/partner-api/resume', { method: 'POST' })))['limit'] as { paused: boolean };
    expect(listed.paused).toBe(false);
    const reset = await json(await api.call('/v1/limits/partner-api', { method: 'DELETE' }));
    expect((reset['limit'] as { override: unknown } | undefined)?.override ?? null).toBeNull();
    const all = (await (await api.call('/v1/limits', { role: 'read' })).json()) as { key: string }[];
    expect(all.map((entry) => entry.key)).toContain('partner-api');
  });
});

describe('HTTP API: queues, states and edges', () => {
  it('reads never create a queue: an unknown ?queue= is a 404 and leaves no key; enqueueing creates it', async () => {
    const { p, api } = await setup();
    const other = uniqueQueue('api-other');
    const unknown = await api.call(`/v1/batches?queue=${other}`, { role: 'read' });
    expect(unknown.status).toBe(404);
    expect((await json(unknown))['message']).toContain(`no queue "${other}"`);
    expect(await redis().client.keys(`sluice:{${other}}:*`)).toEqual([]);

    // A single object is one operation; with no worker on that queue it stays queued.
    const accepted = await api.call(`/v1/operations?queue=${other}`, { method: 'POST', role: 'enqueue', json: p.op('/elsewhere') });
    expect(accepted.status).toBe(202);
    const { ids, batchId } = await json(accepted);
    expect(ids).toHaveLength(1);
    // Location names the queue, so following it reaches the batch (without ?queue= it is the default queue's 404).
    const location = accepted.headers.get('location')!;
    expect(location).toBe(`/v1/batches/${batchId as string}?queue=${other}`);
    expect(await json(await api.call(location, { role: 'read' }))).toMatchObject({ batchId, total: 1, pending: 1 });
    expect((await api.call(location.split('?')[0]!, { role: 'read' })).status).toBe(404);
    const state = await json(await api.call(`/v1/operations/${(ids as string[])[0]!}?queue=${other}`, { role: 'read' }));
    expect(state).toMatchObject({ state: 'queued', queue: other, batchId, failedAttempts: [] });
    expect((await json(await api.call(`/v1/batches/${batchId as string}?queue=${other}`, { role: 'read' })))['pending']).toBe(1);
    // The server's own queue did not see it.
    expect((await api.call(`/v1/batches/${batchId as string}`, { role: 'read' })).status).toBe(404);
  });

  it('shows a dead-lettered operation with its attempts; replays by id report the missing; filters by status none', async () => {
    const { p, api } = await setup();
    p.target.script('POST /broken', [{ status: 500 }]);
    const { ids, batchId } = await json(
      await api.call('/v1/operations', {
        method: 'POST',
        json: [p.op('/broken', { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } })],
      }),
    );
    await followBatch(api, batchId as string);
    const id = (ids as string[])[0]!;
    const state = await json(await api.call(`/v1/operations/${id}`, { role: 'read' }));
    expect(state).toMatchObject({ state: 'dead-lettered', deadLetter: { reason: 'attempts-exhausted', status: 500, replays: 0 } });
    expect(state['failedAttempts']).toHaveLength(2);

    expect((await json(await api.call('/v1/dead-letters?status=none', { role: 'read' })))['total']).toBe(0);
    const failed = (await (await api.call(`/v1/batches/${batchId as string}/results?failed=true`, { role: 'read' })).text())
      .trim()
      .split('\n');
    expect(failed).toHaveLength(1);
    expect((await api.call('/v1/batches/no-such-batch/results', { role: 'read' })).status).toBe(404);

    const replay = await json(await api.call('/v1/dead-letters/replay', { method: 'POST', json: { ids: [id, 'not-a-dead-letter'] } }));
    expect(replay).toMatchObject({ replayed: 1, missing: ['not-a-dead-letter'], remaining: 0 });
    await followBatch(api, batchId as string);
    const purged = await json(await api.call('/v1/dead-letters', { method: 'DELETE', json: { filter: { batch: batchId } } }));
    expect(purged).toEqual({ purged: 1, remaining: 0 });
  });

  it('lists the first hundred problems and counts them all; refuses more than 100,000 operations per request', async () => {
    const { p, api } = await setup();
    const refused = await json(await api.call('/v1/operations', { method: 'POST', json: Array.from({ length: 150 }, () => ({})) }));
    expect(refused['message']).toBe('150 of 150 operations are invalid; nothing was enqueued (the first 100 of 300 problems are listed)');
    expect(refused['errors']).toHaveLength(100);
    const lines = '{}\n'.repeat(100_001);
    const tooMany = await api.call('/v1/operations', { method: 'POST', body: lines, headers: { 'content-type': 'application/x-ndjson' } });
    expect(tooMany.status).toBe(413);
    expect((await json(tooMany))['code']).toBe('TOO_MANY_OPERATIONS');
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
  });

  it('answers odd requests with JSON codes: NDJSON where JSON is due, a malformed URL, long keys, out-of-range limits', async () => {
    const { api } = await setup();
    const ndjson = await api.call('/v1/limits/some-key', {
      method: 'PUT',
      body: '{"rps":1}',
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(ndjson.status).toBe(415);
    expect((await json(ndjson))['code']).toBe('UNSUPPORTED_MEDIA_TYPE');
    const malformed = await api.call('/v1/operations/%zz', { role: 'read' });
    expect(malformed.status).toBe(400);
    expect((await json(malformed))['code']).toBeTypeOf('string');
    const longKey = `${'k'.repeat(200)}.example.com`;
    expect((await api.call(`/v1/limits/${longKey}`, { method: 'PUT', json: { rps: 5 } })).status).toBe(200);
    const huge = await json(await api.call('/v1/limits/some-key', { method: 'PUT', json: { rps: 5, ttl: '300000000d' } }));
    expect(huge['errors']).toEqual([{ path: 'ttl', message: 'at most 365d' }]);
    const fast = await json(await api.call('/v1/limits/some-key', { method: 'PUT', json: { rps: 1e300 } }));
    expect(fast['errors']).toEqual([{ path: 'rps', message: 'at most 100000' }]);
  });

  it('serves /metrics to a read token only', async () => {
    const p = await startPipeline(redis());
    const client = redis().client;
    const metrics = createFleetMetrics({ redis: client, config: p.config, queues: () => discoverQueues(client) });
    try {
      const api = await startApiServer({ redis: client, config: p.config, queue: p.queue, metrics });
      expect((await api.call('/metrics', { role: null })).status).toBe(401);
      const text = await (await api.call('/metrics', { role: 'read' })).text();
      expect(text).toContain(`sluice_workers{queue="${p.queue}"} 1`);
      await api.app.close();
    } finally {
      await metrics.close();
    }
  });
});

describe('HTTP API: readiness and the OpenAPI document', () => {
  it('says not ready (503) when Redis does not answer, while /healthz stays up', async () => {
    const p = await startPipeline(redis());
    const dead = createRedisConnection('redis://127.0.0.1:9', { name: 'test-dead' });
    try {
      const api = await startApiServer({ redis: dead, config: p.config, queue: p.queue });
      expect((await api.call('/healthz', { role: null })).status).toBe(200);
      const ready = await api.call('/readyz', { role: null });
      expect(ready.status).toBe(503);
      expect((await json(ready))['code']).toBe('REDIS_UNAVAILABLE');
      const read = await api.call('/v1/batches/some-batch', { role: 'read' });
      expect(read.status).toBe(503);
      expect((await json(read))['code']).toBe('REDIS_UNAVAILABLE');
      await api.app.close();
    } finally {
      await closeRedis(dead);
    }
  });

  it('serves an OpenAPI 3 document with every route, its role, parameters and bodies', async () => {
    const { api } = await setup();
    const doc = (await (await api.call('/openapi.json', { role: null })).json()) as {
      openapi: string;
      components: { schemas: Record<string, unknown> };
      paths: Record<
        string,
        Record<
          string,
          { 'x-sluice-role'?: string; parameters: { name: string; in: string }[]; requestBody?: { content: Record<string, unknown> } }
        >
      >;
    };
    expect(doc.openapi).toBe('3.0.3');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/login',
      '/logout',
      '/readyz',
      '/v1/batches',
      '/v1/batches/{id}',
      '/v1/batches/{id}/results',
      '/v1/dead-letters',
      '/v1/dead-letters/replay',
      '/v1/limits',
      '/v1/limits/{key}',
      '/v1/limits/{key}/circuit/close',
      '/v1/limits/{key}/circuit/open',
      '/v1/limits/{key}/pause',
      '/v1/limits/{key}/resume',
      '/v1/operations',
      '/v1/operations/{id}',
      '/v1/overview',
      '/v1/queues/{queue}',
      '/v1/queues/{queue}/shards',
      '/v1/schedules',
      '/v1/schedules/{name}',
      '/v1/schedules/{name}/pause',
      '/v1/schedules/{name}/resume',
    ]);
    const enqueue = doc.paths['/v1/operations']!['post']!;
    expect(enqueue['x-sluice-role']).toBe('enqueue');
    expect(Object.keys(enqueue.requestBody!.content)).toEqual(['application/json', 'application/x-ndjson']);
    expect(enqueue.parameters.map((parameter) => parameter.name)).toEqual(['queue', 'batch']);
    expect(doc.paths['/v1/dead-letters']!['delete']!['x-sluice-role']).toBe('admin');
    // Bodies refer to the named schemas (see server-openapi.test.ts), which hold the fields.
    expect(enqueue.requestBody!.content['application/x-ndjson']).toEqual({ schema: { $ref: '#/components/schemas/Operation' } });
    expect(JSON.stringify(doc.components.schemas['Operation'])).toContain('idempotencyKey');
  });
});
