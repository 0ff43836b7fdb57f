/**
 * Operations nested deeper than the limit (64 levels) are a 400 from POST /v1/operations that
 * names the item and the path, as JSON and as NDJSON: not a 500 from a stack overflow, and nothing
 * enqueued. (The CLI's side is in test/e2e/enqueue-integrity.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { startApiServer } from '../helpers/api-server.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { queuedOperations, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

const deepJson = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

describe('POST /v1/operations with an operation nested 5,000 levels deep', () => {
  it('answers 400 naming the item and the path, and enqueues nothing', async () => {
    const p = await startPipeline(redis());
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue });
    const ok = JSON.stringify(p.op('/fine'));
    const deep = JSON.stringify(p.op('/deep', { json: 'DEEP' })).replace('"DEEP"', deepJson(5_000));

    const array = await api.call('/v1/operations?batch=deep', {
      method: 'POST',
      role: 'enqueue',
      body: `[${ok},${deep}]`,
      headers: { 'content-type': 'application/json' },
    });
    expect(array.status).toBe(400);
    expect(array.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(await array.json()).toMatchObject({
      type: '/problems/validation-failed',
      status: 400,
      code: 'VALIDATION_FAILED',
      detail: '1 of 2 operations are invalid; nothing was enqueued',
      errors: [
        {
          index: 1,
          path: 'json[0][0][0][0][0][0][0]…',
          message: 'objects and arrays nested more than 64 levels deep (the operation is the first)',
        },
      ],
    });

    const ndjson = await api.call('/v1/operations?batch=deep', {
      method: 'POST',
      role: 'enqueue',
      body: `${ok}\n${deep}\n`,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(ndjson.status).toBe(400);
    expect(await ndjson.json()).toMatchObject({ errors: [{ index: 1, line: 2, path: 'json[0][0][0][0][0][0][0]…' }] });

    const single = await api.call('/v1/operations', {
      method: 'POST',
      role: 'enqueue',
      body: deep,
      headers: { 'content-type': 'application/json' },
    });
    expect(single.status).toBe(400);
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
    expect(await p.batches.status('deep')).toBeUndefined();
  });
});
