import { describe, expect, it } from 'vitest';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

const ORDER_LIST = {
  type: 'object',
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      items: { type: 'object', required: ['id'], properties: { id: { type: 'string' }, total: { type: 'number' } } },
    },
  },
};

describe('expect.schema through the pipeline', () => {
  it('completes a matching body and dead-letters a mismatch at once, listing each error by path', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /good', [{ status: 200, json: { items: [{ id: 'a', total: 3 }] } }]);
    const badItems = [{ id: 'a' }, { id: 2 }, { total: 'x' }, ...Array.from({ length: 25 }, (_, i) => ({ id: i }))];
    p.target.script('POST /bad', [{ status: 200, json: { items: badItems } }]);
    const batchId = 'schema-check';
    const { results } = await p.producer.enqueueMany(
      [p.op('/good', { expect: { schema: ORDER_LIST } }), p.op('/bad', { expect: { schema: ORDER_LIST }, meta: { row: 2 } })],
      { batchId },
    );
    const [good, bad] = results.map((result) => result.id);

    expect(await p.settled(batchId)).toMatchObject({ total: 2, succeeded: 1, deadLettered: 1, retries: 0 });
    // A mismatch is not retried: asking again would get the same body.
    expect(p.requestsTo('/bad')).toHaveLength(1);

    const letter = await p.deadLetters.get(bad!);
    expect(letter).toMatchObject({ reason: 'schema-mismatch', status: 200 });
    expect(letter!.attempts).toHaveLength(1);
    expect(letter!.attempts[0]).toMatchObject({ status: 200, error: 'SCHEMA_MISMATCH' });
    const lines = letter!.message.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      'response body does not match expect.schema (28 errors):',
      '/items/1/id: must be string',
      "/items/2: must have required property 'id'",
      '/items/2/total: must be number',
      '/items/3/id: must be string',
    ]);
    expect(lines).toHaveLength(1 + 20 + 1);
    expect(lines.at(-1)).toBe('… and 8 more');
    expect(letter!.attempts[0]!.message).toBe(letter!.message);
    expect(letter!.attempts[0]!.excerpt).toContain('"items":[{"id":"a"}');

    const byId = new Map((await p.results(batchId)).map((line) => [line.id, line]));
    expect(byId.get(good!)).toMatchObject({ outcome: 'succeeded', status: 200, result: { body: { items: [{ id: 'a', total: 3 }] } } });
    expect(byId.get(bad!)).toMatchObject({ outcome: 'deadLettered', reason: 'schema-mismatch', status: 200, meta: { row: 2 } });
    expect(byId.get(bad!)?.error).toContain('/items/1/id: must be string');
  });

  it('refuses an operation with an invalid schema at enqueue, before anything is queued', async () => {
    const p = await startPipeline(redis());
    await expect(
      p.producer.enqueue(p.op('/never', { expect: { schema: { type: 'strin' } } }), { batchId: 'schema-invalid' }),
    ).rejects.toMatchObject({
      issues: [{ path: 'expect.schema.type', message: expect.stringContaining('must be equal to one of the allowed values') }],
    });
    expect(p.requestsTo('/never')).toHaveLength(0);
  });
});

describe('the response size cap through the pipeline', () => {
  it('dead-letters an accepted response larger than SLUICE_MAX_RESPONSE_BYTES as bad-response', async () => {
    const p = await startPipeline(redis(), { maxResponseBytes: 2_048 });
    p.target.script('POST /huge', [{ status: 200, json: { data: 'x'.repeat(5_000) } }]);
    p.target.script('POST /small', [{ status: 200, json: { data: 'x'.repeat(1_000) } }]);
    const batchId = 'size-cap';
    const { results } = await p.producer.enqueueMany([p.op('/huge'), p.op('/small')], { batchId });
    const [huge, small] = results.map((result) => result.id);

    expect(await p.settled(batchId)).toMatchObject({ total: 2, succeeded: 1, deadLettered: 1, retries: 0 });
    expect(p.requestsTo('/huge')).toHaveLength(1);
    const letter = await p.deadLetters.get(huge!);
    expect(letter).toMatchObject({ reason: 'bad-response', status: 200 });
    expect(letter!.attempts[0]).toMatchObject({ error: 'RESPONSE_TOO_LARGE' });
    expect(letter!.message).toContain('larger than 2048 bytes');
    const lines = await p.results(batchId);
    expect(lines.find((line) => line.id === small)).toMatchObject({ outcome: 'succeeded', result: { bodyBytes: 1_011 } });
  });
});
