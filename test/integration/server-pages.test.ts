import { describe, expect, it } from 'vitest';
import { useRedisServer } from '../helpers/redis.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';

const redis = useRedisServer();

async function setup(): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis());
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue });
  return { p, api };
}

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * Every page from `first`, following each answer's Link rel="next" (checked against its
 * nextCursor); `between` runs after each page but the last.
 */
async function walk<T>(api: ApiServer, first: string, between: () => Promise<void>): Promise<Page<T>[]> {
  const pages: Page<T>[] = [];
  let path: string | undefined = first;
  while (path) {
    const response = await api.call(path, { role: 'read' });
    expect(response.status).toBe(200);
    const page = (await response.json()) as Page<T>;
    pages.push(page);
    const link = response.headers.get('link');
    if (page.nextCursor === null) {
      expect(link).toBeNull();
      path = undefined;
    } else {
      const url = new URL(first, 'http://x');
      url.searchParams.set('cursor', page.nextCursor);
      expect(link).toBe(`<${url.pathname}${url.search}>; rel="next"`);
      path = /^<([^>]+)>; rel="next"$/.exec(link!)![1]!;
      await between();
    }
    if (pages.length > 20) throw new Error('the walk does not end');
  }
  return pages;
}

/** Each id once (a repeat would show as a shorter set). */
function once(ids: string[]): string[] {
  expect(new Set(ids).size).toBe(ids.length);
  return [...ids].sort();
}

describe('HTTP API: cursor pages', () => {
  it('walks 25 batches by 10, each once, while new batches arrive between pages', async () => {
    const { p, api } = await setup();
    const enqueue = async (batch: string) => {
      const response = await api.call(`/v1/operations?batch=${batch}`, { method: 'POST', role: 'enqueue', json: p.op('/page') });
      expect(response.status).toBe(202);
    };
    const old = Array.from({ length: 25 }, (_, i) => `page-old-${String(i).padStart(2, '0')}`);
    for (const batch of old) await enqueue(batch);
    let added = 0;
    const pages = await walk<{ batchId: string }>(api, '/v1/batches?limit=10', async () => {
      await enqueue(`page-new-${(added += 1)}`);
      await enqueue(`page-new-${(added += 1)}`);
    });
    expect(pages.map((page) => page.items.length)).toEqual([10, 10, 5]);
    const seen = pages.flatMap((page) => page.items.map((batch) => batch.batchId));
    // The walk started before the new ones: none of them in it, every old one exactly once, newest first.
    expect(once(seen)).toEqual(old);
    expect(seen).toEqual(
      await redis()
        .client.zrevrangebyscore(`sluice:{${p.queue}}:batches`, '+inf', '-inf')
        .then((ids) => ids.filter((id) => id.startsWith('page-old'))),
    );
    const fresh = (await (await api.call('/v1/batches?limit=4', { role: 'read' })).json()) as Page<{ batchId: string }>;
    expect(fresh.items.map((batch) => batch.batchId).sort()).toEqual(['page-new-1', 'page-new-2', 'page-new-3', 'page-new-4']);
  });

  it('walks 25 dead letters by 10, each once, keeping the filter, while new ones are dead-lettered between pages', async () => {
    const { p, api } = await setup();
    p.target.script('POST /gone', [{ status: 404 }]);
    p.target.script('POST /unprocessable', [{ status: 422 }]);
    const deadLetter = async (operations: Record<string, unknown>[]) => {
      const accepted = (await (await api.call('/v1/operations', { method: 'POST', role: 'enqueue', json: operations })).json()) as {
        batchId: string;
        ids: string[];
      };
      expect((await p.settled(accepted.batchId)).deadLettered).toBe(operations.length);
      return accepted.ids;
    };
    // 25 404s among 5 422s, dead-lettered in chunks (a chunk shares one timestamp: pages cut through such runs).
    const old = await deadLetter([
      ...Array.from({ length: 25 }, () => p.op('/gone')),
      ...Array.from({ length: 5 }, () => p.op('/unprocessable')),
    ]);
    const old404 = old.slice(0, 25);
    const pages = await walk<{ id: string; status: number }>(api, '/v1/dead-letters?status=404&limit=10', async () => {
      await deadLetter([p.op('/gone'), p.op('/gone')]);
    });
    expect(pages.map((page) => page.items.length)).toEqual([10, 10, 5]);
    const items = pages.flatMap((page) => page.items);
    expect(items.every((item) => item.status === 404)).toBe(true);
    expect(once(items.map((item) => item.id))).toEqual([...old404].sort());
    // The summary still counts all that match, on every page.
    const last = pages.at(-1) as Page<unknown> & { total: number };
    expect(last.total).toBe(25 + 2 * 2);

    const unfiltered = await walk<{ id: string }>(api, '/v1/dead-letters?limit=10', async () => undefined);
    expect(unfiltered.map((page) => page.items.length)).toEqual([10, 10, 10, 4]);
    expect(once(unfiltered.flatMap((page) => page.items.map((item) => item.id)))).toHaveLength(30 + 2 * 2);
  });

  it('refuses a cursor it did not give out with 400 naming query.cursor', async () => {
    const { api } = await setup();
    for (const path of ['/v1/batches?cursor=not-a-cursor!', '/v1/dead-letters?cursor=eyJub3QiOiJhIGN1cnNvciJ9']) {
      const response = await api.call(path, { role: 'read' });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { code: string; errors: { path: string; message: string }[] };
      expect(body.code).toBe('VALIDATION_FAILED');
      expect(body.errors).toEqual([
        { path: 'query.cursor', message: "not a cursor this API gave out: pass the previous page's nextCursor unchanged" },
      ]);
    }
  });

  it('documents the cursor, the Link header of pages and the Location of an enqueue in /openapi.json', async () => {
    const { api } = await setup();
    const doc = (await (await api.call('/openapi.json', { role: null })).json()) as {
      paths: Record<
        string,
        Record<string, { parameters: { name: string }[]; responses: Record<string, { headers?: Record<string, unknown> }> }>
      >;
    };
    for (const path of ['/v1/batches', '/v1/dead-letters']) {
      const list = doc.paths[path]!['get']!;
      expect(list.parameters.map((parameter) => parameter.name)).toContain('cursor');
      expect(Object.keys(list.responses['200']!.headers!)).toEqual(['Link']);
    }
    expect(doc.paths['/v1/operations']!['post']!.responses['202']!.headers).toEqual({
      Location: { description: expect.stringContaining('/v1/batches/{batchId}'), schema: { type: 'string' } },
    });
  });
});
