/**
 * A forEach walk enqueues each page's children all or none: every child is rendered and validated
 * before the first is enqueued, and a bad one fails the walk with an error naming it.
 */
import { describe, expect, it } from 'vitest';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { queuedOperations, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

/** One page (no Link header: the walk ends there) of items (JSON text) at GET /list; children POST to /things/:id. */
async function pipelineServing(items: unknown[] | string): Promise<Pipeline> {
  const p = await startPipeline(redis(), { concurrency: 1 });
  const body = typeof items === 'string' ? items : JSON.stringify(items);
  p.target.setDefault((request) => {
    if (request.path === '/list') return { status: 200, body, headers: { 'content-type': 'application/json' } };
    if (request.path.startsWith('/things/')) return { status: 201, json: { ok: true } };
    return { status: 404, json: {} };
  });
  return p;
}

const walk = (forEach: Record<string, unknown>) => ({
  method: 'GET',
  target: 'test-target',
  url: '/list',
  retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  paginate: { style: 'link', forEach },
});

describe('forEach children of a page', () => {
  it('a bad child past the first 500 enqueues none of the page, and the dead letter names it', async () => {
    const items = Array.from({ length: 600 }, (_, id) => ({ id, method: id === 550 ? 'NOT A METHOD' : 'POST' }));
    const p = await pipelineServing(items);
    const { id } = await p.producer.enqueue(walk({ method: '{{item.method}}', target: 'test-target', url: '/things/{{item.id}}' }), {
      batchId: 'fan-bad',
    });

    expect(await p.settled('fan-bad')).toMatchObject({ total: 1, succeeded: 0, deadLettered: 1, pending: 0 });
    const letter = await p.deadLetters.get(id);
    expect(letter?.message).toBe(
      "page 1: invalid forEach children: none of this page's 600 was enqueued:\n  items[550].method: expected an HTTP method such as GET or POST",
    );
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
    expect(p.requestsTo('/things/0')).toHaveLength(0);
    expect(p.target.requests.filter((request) => request.path.startsWith('/things/'))).toHaveLength(0);
  });

  it('an item too deep to write into a text placeholder is a bad child, not a crash', async () => {
    const p = await pipelineServing(`[{"id":1},{"id":2,"deep":${'['.repeat(5_000)}${']'.repeat(5_000)}},{"id":3}]`);
    const { id } = await p.producer.enqueue(
      walk({ method: 'POST', target: 'test-target', url: '/things/{{item.id}}', json: { note: 'seen: {{item.deep}}' } }),
      { batchId: 'fan-deep' },
    );

    expect(await p.settled('fan-deep')).toMatchObject({ total: 1, deadLettered: 1 });
    expect((await p.deadLetters.get(id))?.message).toMatch(
      /^page 1: invalid forEach children: none of this page's 3 was enqueued:\n {2}items\[1\]: cannot render paginate\.forEach for this item: Maximum call stack size exceeded$/,
    );
    expect(p.target.requests.filter((request) => request.path.startsWith('/things/'))).toHaveLength(0);
  });

  it('good pages still fan out: every child once, in the parent`s batch', async () => {
    const p = await pipelineServing(Array.from({ length: 600 }, (_, id) => ({ id })));
    await p.producer.enqueue(walk({ method: 'POST', target: 'test-target', url: '/things/{{item.id}}' }), { batchId: 'fan-good' });
    expect(await p.settled('fan-good', 30_000)).toMatchObject({ total: 601, succeeded: 601, deadLettered: 0 });
    expect(p.target.requests.filter((request) => request.path.startsWith('/things/'))).toHaveLength(600);
  });
});
