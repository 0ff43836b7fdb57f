import { once } from 'node:events';
import { brotliCompressSync, createGzip, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { queuedOperations, uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';

const redis = useRedisServer();
const NDJSON = 'application/x-ndjson';

async function setup(extra: { bodyLimitBytes?: number } = {}): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis());
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, ...extra });
  return { p, api };
}

/** POSTs raw bytes to /v1/operations (a queue with no worker, so what is enqueued stays to be counted). */
function post(api: ApiServer, path: string, body: Buffer, headers: Record<string, string>): Promise<Response> {
  return fetch(`${api.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKENS.enqueue}`, ...headers }, body });
}

/** `megabytes` MiB of zeros, gzipped as a stream (never held whole): about 1,000 to 1. */
async function gzippedZeros(megabytes: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => chunks.push(chunk));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < megabytes; i += 1) if (!gzip.write(zeros)) await once(gzip, 'drain');
  gzip.end();
  await once(gzip, 'end');
  return Buffer.concat(chunks);
}

describe('HTTP API: compressed request bodies', () => {
  it('takes a gzipped NDJSON body of 5,000 operations, decoded as it streams', async () => {
    const { p, api } = await setup();
    const queue = uniqueQueue('gz');
    const ndjson = Array.from({ length: 5_000 }, (_, i) => JSON.stringify(p.op(`/gz/${i}`, { meta: { row: i } }))).join('\n');
    const body = gzipSync(ndjson);
    expect(body.length).toBeLessThan(ndjson.length / 10);
    const response = await post(api, `/v1/operations?queue=${queue}&batch=gz-5000`, body, {
      'content-type': NDJSON,
      'content-encoding': 'gzip',
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ batchId: 'gz-5000', enqueued: 5_000, duplicates: 0 });
    expect(await queuedOperations(redis().client, queue)).toBe(5_000);
  });

  it.each([
    { encoding: 'gzip', encode: gzipSync },
    { encoding: 'deflate', encode: deflateSync },
    { encoding: 'br', encode: brotliCompressSync },
    { encoding: 'GZIP, identity', encode: gzipSync },
  ])('takes a JSON array with Content-Encoding: $encoding', async ({ encoding, encode }) => {
    const { p, api } = await setup();
    const queue = uniqueQueue('enc');
    const body = encode(Buffer.from(JSON.stringify([p.op('/a'), p.op('/b')])));
    const response = await post(api, `/v1/operations?queue=${queue}`, body, {
      'content-type': 'application/json',
      'content-encoding': encoding,
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ enqueued: 2 });
    expect(await queuedOperations(redis().client, queue)).toBe(2);
  });

  it.each([NDJSON, 'application/json'])(
    'answers a zip bomb (%s: 200 MiB of zeros in ~200 KiB) with 413 once past the limit',
    async (type) => {
      const { api } = await setup({ bodyLimitBytes: 1024 * 1024 });
      const queue = uniqueQueue('bomb');
      const bomb = await gzippedZeros(200);
      expect(bomb.length).toBeLessThan(1024 * 1024);
      const response = await post(api, `/v1/operations?queue=${queue}`, bomb, { 'content-type': type, 'content-encoding': 'gzip' });
      expect(response.status).toBe(413);
      expect(response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      expect(await response.json()).toMatchObject({
        type: '/problems/body-too-large',
        status: 413,
        code: 'BODY_TOO_LARGE',
        detail:
          'the body decompresses to more than 1048576 bytes (SLUICE_API_MAX_BODY_BYTES counts the decompressed body): send fewer operations per request',
      });
      expect(await queuedOperations(redis().client, queue)).toBe(0);
    },
  );

  it('answers a corrupt or cut-off gzip body with 400 and enqueues nothing, even after thousands of good lines', async () => {
    const { p, api } = await setup();
    const queue = uniqueQueue('corrupt');
    const ndjson = Array.from({ length: 3_000 }, (_, i) =>
      JSON.stringify(p.op(`/c/${i}`, { meta: { note: `row ${i} ${'x'.repeat(i % 50)}` } })),
    ).join('\n');
    const good = gzipSync(ndjson);
    const corrupt = Buffer.from(good);
    // Past the first few thousand lines' worth of compressed bytes: garbage in the deflate stream.
    corrupt.fill(0xff, Math.floor(good.length * 0.7), Math.floor(good.length * 0.7) + 64);
    const cases = [
      { body: corrupt, type: NDJSON },
      { body: good.subarray(0, Math.floor(good.length * 0.8)), type: NDJSON },
      { body: Buffer.from('this is not gzip at all'), type: 'application/json' },
    ];
    for (const { body, type } of cases) {
      const response = await post(api, `/v1/operations?queue=${queue}&batch=corrupt-gz`, body, {
        'content-type': type,
        'content-encoding': 'gzip',
      });
      expect(response.status).toBe(400);
      const problem = (await response.json()) as { code: string; title: string; detail: string };
      expect(problem.code).toBe('BAD_CONTENT_ENCODING');
      expect(problem.title).toBe('The body is not valid in its Content-Encoding');
      expect(problem.detail).toMatch(/^the body is not valid gzip \(Content-Encoding: gzip\): \S/);
    }
    expect(await queuedOperations(redis().client, queue)).toBe(0);
    expect((await api.call(`/v1/batches/corrupt-gz?queue=${queue}`, { role: 'read' })).status).toBe(404);
  });

  it('refuses other encodings with 415 naming the supported ones (Accept-Encoding too); routes without encodings take none', async () => {
    const { p, api } = await setup();
    const body = Buffer.from(JSON.stringify(p.op('/a')));
    for (const encoding of ['zstd', 'compress', 'gzip, gzip']) {
      const response = await post(api, '/v1/operations', body, { 'content-type': 'application/json', 'content-encoding': encoding });
      expect(response.status).toBe(415);
      expect(response.headers.get('accept-encoding')).toBe('gzip, deflate, br');
      expect(await response.json()).toMatchObject({
        type: '/problems/unsupported-content-encoding',
        title: 'Unsupported Content-Encoding',
        status: 415,
        code: 'UNSUPPORTED_CONTENT_ENCODING',
        detail: `Content-Encoding ${encoding} is not supported: POST /v1/operations takes Content-Encoding gzip, deflate, br or none`,
      });
    }
    const limit = await fetch(`${api.url}/v1/limits/some-key`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync('{"rps":5}'),
    });
    expect(limit.status).toBe(415);
    expect(((await limit.json()) as { detail: string }).detail).toBe(
      'Content-Encoding gzip is not supported: PUT /v1/limits/:key takes no Content-Encoding',
    );
    expect(await queuedOperations(redis().client, p.queue)).toBe(0);
  });
});
