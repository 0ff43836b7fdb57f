/**
 * Pagination through the real pipeline against a paginated API served by the test's target
 * server, in each style: the items land in a JSONL file exactly once, or fan out as child
 * operations into the same batch; a failed page is retried from that page.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { ValidationError } from '../../src/errors.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';
import type { RecordedRequest, ScriptedResponse } from '../helpers/target-server.js';

const redis = useRedisServer();
const RECORDS = Array.from({ length: 95 }, (_, i) => ({ id: i + 1, name: `record-${i + 1}` }));
let downloads: string;

beforeAll(async () => {
  downloads = await mkdtemp(join(tmpdir(), 'sluice-pages-'));
});
afterAll(async () => {
  await rm(downloads, { recursive: true, force: true });
});

/** A paginated API in four styles over RECORDS; `failOnce` makes the first request for that page/offset/cursor a 503. */
function pagedApi(failOnce?: string): (request: RecordedRequest) => ScriptedResponse {
  const failed = new Set<string>();
  return (request) => {
    const url = new URL(request.path, 'http://api.test');
    const q = (name: string) => url.searchParams.get(name);
    const key = `${url.pathname}?${url.searchParams.toString()}`;
    if (failOnce && key === failOnce && !failed.has(key)) {
      failed.add(key);
      return { status: 503, json: { error: 'try again' } };
    }
    switch (url.pathname) {
      case '/page': {
        const page = Number(q('page'));
        const size = Number(q('per_page'));
        return { status: 200, json: { data: { items: RECORDS.slice((page - 1) * size, page * size) }, page } };
      }
      case '/offset': {
        const offset = Number(q('offset'));
        return { status: 200, json: RECORDS.slice(offset, offset + Number(q('limit'))) };
      }
      case '/cursor': {
        const after = Number(q('cursor') ?? 0);
        const items = RECORDS.filter((record) => record.id > after).slice(0, 20);
        const last = items.at(-1)?.id;
        return { status: 200, json: { items, next_cursor: last !== undefined && last < RECORDS.length ? String(last) : null } };
      }
      case '/link': {
        const after = Number(q('after') ?? 0);
        const items = RECORDS.filter((record) => record.id > after).slice(0, 30);
        const last = items.at(-1)!.id;
        const headers: Record<string, string | string[]> =
          last < RECORDS.length
            ? { link: `</link?after=${last}>; rel="next", </link?after=0>; rel="first"` }
            : { link: '</link?after=0>; rel="first"' };
        return { status: 200, json: items, headers };
      }
      case '/titled': {
        // Quoted commas and semicolons in titles, rel with two types, the next link on the second of two Link lines.
        const after = Number(q('after') ?? 0);
        const items = RECORDS.filter((record) => record.id > after).slice(0, 30);
        const last = items.at(-1)!.id;
        const page = Math.ceil(last / 30);
        const link = ['</titled?after=0>; rel="first"; title="Page, one; the first"'];
        if (last < RECORDS.length) link.push(`</titled?after=${last}>; title="Page, ${page + 1}"; rel="next last"`);
        return { status: 200, json: items, headers: { link } };
      }
      case '/unreadable': {
        // An unterminated quoted-string: neither a next link nor a clean end.
        return { status: 200, json: RECORDS.slice(0, 30), headers: { link: '</unreadable?after=30>; title="Page, two; rel=next' } };
      }
      default:
        if (url.pathname.startsWith('/things/')) return { status: 201, json: { ok: true } };
        return { status: 404, json: { error: 'no route' } };
    }
  };
}

async function pipelineWithDownloads(failOnce?: string): Promise<Pipeline> {
  const p = await startPipeline(redis(), { config: parseSluiceConfig({ files: { downloadDir: downloads } }) });
  p.target.setDefault(pagedApi(failOnce));
  return p;
}

const ids = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { id: number }).id);

describe('pagination into a JSONL file', () => {
  it.each([
    ['page', '/page', { style: 'page', itemsPath: 'data.items', size: 10 }, 10],
    ['offset', '/offset', { style: 'offset', size: 25 }, 4],
    ['cursor', '/cursor', { style: 'cursor', itemsPath: 'items', cursorPath: 'next_cursor' }, 5],
    ['link', '/link', { style: 'link' }, 4],
    ['link with quoted commas', '/titled', { style: 'link' }, 4],
  ])('%s style: every item exactly once, the result says where', async (style, path, paginate, pages) => {
    const p = await pipelineWithDownloads();
    const name = style.replaceAll(' ', '-');
    const output = { path: `${name}-${Date.now()}.jsonl` };
    await p.producer.enqueue(
      { method: 'GET', target: 'test-target', url: path, paginate: { ...paginate, output } },
      { batchId: `walk-${name}` },
    );
    expect(await p.settled(`walk-${name}`)).toMatchObject({ succeeded: 1, deadLettered: 0 });
    const [line] = await p.results(`walk-${name}`);
    const file = join(downloads, output.path);
    const text = await readFile(file, 'utf8');
    expect(ids(text)).toEqual(RECORDS.map((record) => record.id));
    expect(line!.pagination).toEqual({
      pages,
      items: 95,
      file: { path: file, bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') },
    });
    expect(p.target.requests).toHaveLength(pages);
  });

  it('a failed page is retried from that page, not from the first', async () => {
    const p = await pipelineWithDownloads('/page?page=3&per_page=10');
    await p.producer.enqueue(
      {
        method: 'GET',
        target: 'test-target',
        url: '/page',
        retry: { baseDelayMs: 10, maxDelayMs: 20 },
        paginate: { style: 'page', itemsPath: 'data.items', size: 10, output: { path: 'retried.jsonl' } },
      },
      { batchId: 'walk-retry' },
    );
    expect(await p.settled('walk-retry')).toMatchObject({ succeeded: 1, retries: 1 });
    expect(p.target.requests.map((request) => new URL(request.path, 'http://x').searchParams.get('page'))).toEqual([
      '1',
      '2',
      '3',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
      '10',
    ]);
    expect(ids(await readFile(join(downloads, 'retried.jsonl'), 'utf8'))).toEqual(RECORDS.map((record) => record.id));
  });

  it('maxItems and maxPages stop the walk early', async () => {
    const p = await pipelineWithDownloads();
    await p.producer.enqueue(
      {
        method: 'GET',
        target: 'test-target',
        url: '/page',
        paginate: { style: 'page', itemsPath: 'data.items', size: 10, maxItems: 25, output: { path: 'first-25.jsonl' } },
      },
      { batchId: 'walk-max-items' },
    );
    await p.producer.enqueue(
      {
        method: 'GET',
        target: 'test-target',
        url: '/offset',
        paginate: { style: 'offset', size: 10, maxPages: 2, output: { path: 'two-pages.jsonl' } },
      },
      { batchId: 'walk-max-pages' },
    );
    expect(await p.settled('walk-max-items')).toMatchObject({ succeeded: 1 });
    expect(await p.settled('walk-max-pages')).toMatchObject({ succeeded: 1 });
    expect(ids(await readFile(join(downloads, 'first-25.jsonl'), 'utf8'))).toEqual(RECORDS.slice(0, 25).map((record) => record.id));
    expect(ids(await readFile(join(downloads, 'two-pages.jsonl'), 'utf8'))).toEqual(RECORDS.slice(0, 20).map((record) => record.id));
  });

  it('a page whose items are not an array dead-letters the walk, saying which page and path', async () => {
    const p = await pipelineWithDownloads();
    const { id } = await p.producer.enqueue(
      { method: 'GET', target: 'test-target', url: '/page', paginate: { style: 'page', itemsPath: 'data.records', size: 10 } },
      { batchId: 'walk-bad' },
    );
    expect(await p.settled('walk-bad')).toMatchObject({ deadLettered: 1 });
    const letter = await p.deadLetters.get(id);
    expect(letter).toMatchObject({
      reason: 'bad-response',
      message: 'page 1: paginate.itemsPath "data.records" is not an array (got undefined)',
    });
  });

  it('a Link header that cannot be read dead-letters the walk rather than calling page 1 the last', async () => {
    const p = await pipelineWithDownloads();
    const { id } = await p.producer.enqueue(
      { method: 'GET', target: 'test-target', url: '/unreadable', paginate: { style: 'link', output: { path: 'unreadable.jsonl' } } },
      { batchId: 'walk-unreadable' },
    );
    expect(await p.settled('walk-unreadable')).toMatchObject({ succeeded: 0, deadLettered: 1, retries: 0 });
    expect(await p.deadLetters.get(id)).toMatchObject({
      reason: 'bad-response',
      message:
        'page 1: the Link header cannot be read (at character 51 of 50: expected a closing quote); stopping rather than taking this page for the last',
    });
    expect(p.target.requests).toHaveLength(1);
  });
});

describe('a walk that fails for good', () => {
  it('leaves no partial items file behind', async () => {
    const p = await pipelineWithDownloads();
    const api = pagedApi();
    p.target.setDefault((request) => (request.path.includes('page=3&') ? { status: 404, json: { error: 'gone' } } : api(request)));
    await p.producer.enqueue(
      {
        method: 'GET',
        target: 'test-target',
        url: '/page',
        paginate: { style: 'page', itemsPath: 'data.items', size: 10, output: { path: 'abandoned.jsonl' } },
      },
      { batchId: 'walk-abandoned' },
    );
    expect(await p.settled('walk-abandoned')).toMatchObject({ deadLettered: 1 });
    expect(p.target.requests).toHaveLength(3);
    expect((await readdir(downloads)).filter((name) => name.includes('abandoned'))).toEqual([]);
  });
});

describe('pagination fanning out with forEach', () => {
  it('enqueues one child operation per item into the same batch, item fields substituted with their types', async () => {
    const p = await pipelineWithDownloads();
    const forEach = {
      method: 'POST',
      target: 'test-target',
      url: '/things/{{item.id}}',
      json: { id: '{{item.id}}', label: 'thing {{item.name}}' },
    };
    await p.producer.enqueue(
      {
        method: 'GET',
        target: 'test-target',
        url: '/cursor',
        paginate: { style: 'cursor', itemsPath: 'items', cursorPath: 'next_cursor', forEach },
      },
      { batchId: 'fan-out' },
    );
    const status = await p.settled('fan-out', 30_000);
    expect(status).toMatchObject({ total: 96, succeeded: 96, deadLettered: 0 });
    const posts = p.target.requests.filter((request) => request.method === 'POST');
    expect(posts.map((request) => request.path).sort()).toEqual(RECORDS.map((record) => `/things/${record.id}`).sort());
    expect(JSON.parse(posts.find((request) => request.path === '/things/7')!.body)).toEqual({ id: 7, label: 'thing record-7' });
    const parent = (await p.results('fan-out')).find((line) => line.pagination);
    expect(parent!.pagination).toEqual({ pages: 5, items: 95, childBatchId: 'fan-out' });
  });

  it('a template that cannot make a valid operation is refused at enqueue, with the template path', async () => {
    const p = await pipelineWithDownloads();
    const error = await p.producer
      .enqueue({
        method: 'GET',
        target: 'test-target',
        url: '/page',
        paginate: { style: 'page', forEach: { method: 'POST', url: '/things/{{item.id}}', jsn: {} } },
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain('paginate.forEach.jsn: unknown field');
    expect((error as Error).message).toContain('paginate.forEach.url: a path needs a target');
  });

  it('file output needs files.downloadDir; pagination needs GET', async () => {
    const p = await startPipeline(redis());
    const noDir = await p.producer
      .enqueue({ method: 'GET', target: 'test-target', url: '/page', paginate: { style: 'page' } })
      .catch((caught: unknown) => caught);
    expect((noDir as Error).message).toContain(
      'paginate: the items go to a JSONL file under files.downloadDir, which the config does not set (or give paginate.forEach)',
    );
    const post = await p.producer
      .enqueue({
        method: 'POST',
        target: 'test-target',
        url: '/page',
        paginate: { style: 'page', forEach: { method: 'GET', target: 'test-target', url: '/x' } },
      })
      .catch((caught: unknown) => caught);
    expect((post as Error).message).toContain('paginate: pagination walks GET requests; this operation is POST');
  });
});
