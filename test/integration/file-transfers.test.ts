import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { FAST_RETRY, startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';
import { startByteServer, type ByteServer } from '../helpers/byte-server.js';

const redis = useRedisServer();

let root: string;
let uploadDir: string;
let downloadDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-pipeline-files-'));
  uploadDir = join(root, 'uploads');
  downloadDir = join(root, 'downloads');
  await mkdir(uploadDir);
  await mkdir(downloadDir);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A pipeline whose config has a `bytes` target for a byte server and the test's file directories. */
async function start(
  files: { uploadDir?: string; downloadDir?: string } | null = { uploadDir, downloadDir },
): Promise<{ p: Pipeline; server: ByteServer }> {
  const server = await startByteServer();
  onTestFinished(() => server.close());
  const config = parseSluiceConfig({
    targets: { bytes: { baseUrl: server.url, allowPrivateAddresses: true } },
    ...(files ? { files } : {}),
  });
  return { p: await startPipeline(redis(), { config }), server };
}

const op = (extra: Record<string, unknown>) => ({ method: 'POST', target: 'bytes', retry: FAST_RETRY, ...extra });
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('uploads through the pipeline', () => {
  it('reads the files again for every attempt: a retried multipart upload sends them whole each time', async () => {
    const { p, server } = await start();
    const data = randomBytes(500_000);
    await writeFile(join(uploadDir, 'export.bin'), data);
    let calls = 0;
    server.route('/import', (_request, response, received) => {
      calls += 1;
      response.writeHead(calls === 1 ? 503 : 201, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ bytes: received.bytes }));
    });
    const batchId = 'upload-retry';
    await p.producer.enqueue(
      op({
        url: '/import',
        multipart: [
          { name: 'note', value: 'nightly' },
          { name: 'file', file: 'export.bin' },
        ],
      }),
      { batchId },
    );

    expect(await p.settled(batchId)).toMatchObject({ succeeded: 1, deadLettered: 0, retries: 1 });
    expect(server.received).toHaveLength(2);
    const [first, second] = server.received;
    for (const request of [first!, second!]) {
      expect(request.headers['content-length']).toBe(String(request.bytes));
      const form = await new Request('http://parse.invalid/', {
        method: 'POST',
        headers: { 'content-type': request.headers['content-type']! },
        body: request.body!,
      }).formData();
      expect(form.get('note')).toBe('nightly');
      expect(sha256(Buffer.from(await (form.get('file') as File).arrayBuffer()))).toBe(sha256(data));
    }
    expect((await p.results(batchId))[0]).toMatchObject({ outcome: 'succeeded', status: 201, attempts: 2 });
  });

  it('dead-letters an operation whose upload file is missing at send time as request-error, sending nothing', async () => {
    const { p, server } = await start();
    const batchId = 'upload-missing';
    const { id } = await p.producer.enqueue(op({ url: '/raw', bodyFile: 'gone/data.csv', meta: { row: 9 } }), { batchId });

    expect(await p.settled(batchId)).toMatchObject({ succeeded: 0, deadLettered: 1, retries: 0 });
    expect(server.received).toHaveLength(0);
    const letter = await p.deadLetters.get(id);
    expect(letter).toMatchObject({
      reason: 'request-error',
      message: `upload file "gone/data.csv" does not exist in files.uploadDir (${uploadDir})`,
    });
    expect((await p.results(batchId))[0]).toMatchObject({ outcome: 'deadLettered', reason: 'request-error', meta: { row: 9 } });
  });

  it('refuses file operations at enqueue when the config has no directories for them', async () => {
    const { p } = await start(null);
    await expect(
      p.producer.enqueue(
        op({
          url: '/x',
          multipart: [
            { name: 'a', value: 'v' },
            { name: 'f', file: 'a.csv' },
          ],
        }),
        { batchId: 'no-dirs' },
      ),
    ).rejects.toMatchObject({
      issues: [{ path: 'multipart[1].file', message: expect.stringContaining('files.uploadDir is not configured') }],
    });
    await expect(p.producer.enqueue(op({ method: 'GET', url: '/x', download: true }), { batchId: 'no-dirs' })).rejects.toMatchObject({
      issues: [{ path: 'download', message: expect.stringContaining('files.downloadDir is not configured') }],
    });
    await expect(p.producer.enqueue(op({ url: '/x', bodyFile: '../x' }), { batchId: 'no-dirs' })).rejects.toMatchObject({
      issues: [{ path: 'bodyFile', message: 'may not contain a .. segment: "../x"' }],
    });
  });
});

describe('downloads through the pipeline', () => {
  it('records the file, its size and SHA-256 in the result line instead of a body', async () => {
    const { p, server } = await start();
    const batchId = 'download-ok';
    const n = 1_500_000;
    const { id } = await p.producer.enqueue(op({ method: 'GET', url: `/bytes?n=${n}&gzip=1`, download: true }), { batchId });

    expect(await p.settled(batchId)).toMatchObject({ succeeded: 1, deadLettered: 0 });
    const sent = server.sent.get(`/bytes?n=${n}&gzip=1`)!;
    const [line] = await p.results(batchId);
    expect(line!.result).toEqual({
      headers: { contentType: 'application/octet-stream' },
      bodyBytes: n,
      bodyTruncated: false,
      download: { path: join(downloadDir, id), bytes: n, sha256: sent.sha256 },
    });
    expect(sha256(await readFile(join(downloadDir, id)))).toBe(sent.sha256);
  });

  it('keeps the excerpt of a refused status for the dead letter, and dead-letters a body past download.maxBytes', async () => {
    const { p, server } = await start();
    server.route('/gone', (_request, response) => {
      response.writeHead(410, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'export expired' }));
    });
    const batchId = 'download-failures';
    const gone = await p.producer.enqueue(op({ method: 'GET', url: '/gone', download: { path: 'exports/gone.bin' } }), { batchId });
    const huge = await p.producer.enqueue(
      op({ method: 'GET', url: '/bytes?n=3000000', download: { path: 'exports/huge.bin', maxBytes: 1_000_000 } }),
      { batchId },
    );

    expect(await p.settled(batchId)).toMatchObject({ succeeded: 0, deadLettered: 2, retries: 0 });
    expect(await p.deadLetters.get(gone.id)).toMatchObject({
      reason: 'permanent-status',
      status: 410,
      attempts: [{ status: 410, excerpt: '{"error":"export expired"}' }],
    });
    expect(await p.deadLetters.get(huge.id)).toMatchObject({
      reason: 'bad-response',
      status: 200,
      attempts: [{ error: 'RESPONSE_TOO_LARGE' }],
    });
    // The directory was made for them; no file (nor temporary file) was left in it.
    expect(await readdir(join(downloadDir, 'exports'))).toEqual([]);
  });
});
