import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileAccessError, NetworkError, RequestError } from '../../src/errors.js';
import { classifyError } from '../../src/http/classify.js';
import { createHttpClient, type HttpClient } from '../../src/http/http-client.js';
import { buildRequestSpec, type RequestSpec } from '../../src/http/request-spec.js';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { parseOperation } from '../../src/operation/parse-operation.js';
import { startByteServer, type ByteServer } from '../helpers/byte-server.js';

const TIMEOUTS = { connect: 5_000, headers: 10_000, total: 20_000 };

let server: ByteServer;
let http: HttpClient;
let root: string;
let uploadDir: string;
let downloadDir: string;

beforeAll(async () => {
  server = await startByteServer();
  http = createHttpClient();
});
afterAll(async () => {
  await http.close();
  await server.close();
});
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-files-'));
  uploadDir = join(root, 'uploads');
  downloadDir = join(root, 'downloads');
  await mkdir(uploadDir);
  await mkdir(downloadDir);
  server.received.length = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The spec a worker builds for `op` (parsed with a config naming the test's directories). */
function specOf(op: Record<string, unknown>, jobId = 'job-1'): RequestSpec {
  const config = parseSluiceConfig({
    targets: { t: { baseUrl: server.url, allowPrivateAddresses: true } },
    files: { uploadDir, downloadDir },
  });
  const parsed = parseOperation({ target: 't', timeoutMs: TIMEOUTS, ...op }, config);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return buildRequestSpec(parsed.operation, config.targets['t'], 'key-1', { ...config.files, jobId });
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Parses a multipart body with the platform's own parser (undici's fetch Request), not ours. */
async function formDataOf(body: Buffer, contentType: string): Promise<FormData> {
  return new Request('http://parse.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
}

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

describe('uploads', () => {
  it('sends multipart text and file parts with a content-length, files streamed from uploadDir', async () => {
    const binary = randomBytes(300_000);
    await mkdir(join(uploadDir, 'in'));
    await writeFile(join(uploadDir, 'in/data.bin'), binary);
    await writeFile(join(uploadDir, 'orders.csv'), 'sku,qty\nA-1,2\n');
    const spec = specOf({
      method: 'POST',
      url: '/import',
      multipart: [
        { name: 'kind', value: 'orders "2026"' },
        { name: 'csv', file: 'orders.csv' },
        { name: 'blob', file: 'in/data.bin', filename: 'renamed "x".bin', contentType: 'application/x-thing' },
      ],
    });

    const response = await http.send(spec);
    expect(response.status).toBe(200);
    const [request] = server.received;
    expect(request!.headers['content-length']).toBe(String(request!.bytes));
    expect(request!.headers['transfer-encoding']).toBeUndefined();
    expect(request!.headers['idempotency-key']).toBe('key-1');
    const contentType = request!.headers['content-type']!;
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);

    const form = await formDataOf(request!.body!, contentType);
    expect(form.get('kind')).toBe('orders "2026"');
    const csv = form.get('csv') as File;
    expect(csv.name).toBe('orders.csv');
    expect(csv.type).toBe('text/csv');
    expect(await csv.text()).toBe('sku,qty\nA-1,2\n');
    const blob = form.get('blob') as File;
    expect(blob.name).toBe('renamed "x".bin');
    expect(blob.type).toBe('application/x-thing');
    expect(Buffer.from(await blob.arrayBuffer()).equals(binary)).toBe(true);
  });

  it('sends bodyFile as the raw body with its size as content-length and a content type by extension', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 17);
    await writeFile(join(uploadDir, 'payload.json'), data);
    const response = await http.send(specOf({ method: 'PUT', url: '/raw', bodyFile: 'payload.json' }));
    expect(response.status).toBe(200);
    expect(response.body.value).toMatchObject({
      bytes: data.byteLength,
      sha256: sha256(data),
      contentType: 'application/json',
      contentLength: String(data.byteLength),
    });
  });

  it('sends an empty file as an empty body', async () => {
    await writeFile(join(uploadDir, 'empty.txt'), '');
    await http.send(specOf({ method: 'POST', url: '/raw', bodyFile: 'empty.txt' }));
    expect(server.received[0]).toMatchObject({ bytes: 0, headers: { 'content-length': '0', 'content-type': 'text/plain' } });
  });

  it('reads the file again for a 307/308 redirect, and drops it for a 303', async () => {
    const data = randomBytes(100_000);
    await writeFile(join(uploadDir, 'again.bin'), data);
    server.route('/temporary', (_request, response) => {
      response.writeHead(307, { location: '/final' });
      response.end();
    });
    server.route('/see-other', (_request, response) => {
      response.writeHead(303, { location: '/final' });
      response.end();
    });
    await http.send(specOf({ method: 'POST', url: '/temporary', bodyFile: 'again.bin' }));
    expect(server.received.map((request) => [request.method, request.path, request.bytes, request.sha256])).toEqual([
      ['POST', '/temporary', data.byteLength, sha256(data)],
      ['POST', '/final', data.byteLength, sha256(data)],
    ]);

    server.received.length = 0;
    await http.send(specOf({ method: 'POST', url: '/see-other', multipart: [{ name: 'f', file: 'again.bin' }] }));
    expect(server.received.map((request) => [request.method, request.path, request.bytes])).toEqual([
      ['POST', '/see-other', expect.any(Number)],
      ['GET', '/final', 0],
    ]);
    expect(server.received[1]!.headers['content-type']).toBeUndefined();
  });

  it('refuses a missing file, a directory and a symbolic link out of uploadDir, before sending anything', async () => {
    const outside = join(root, 'secret.txt');
    await writeFile(outside, 'secret');
    await symlink(outside, join(uploadDir, 'link.txt'));
    await mkdir(join(uploadDir, 'adir'));
    await symlink(root, join(uploadDir, 'up'));
    const attempt = (file: string) =>
      http.send(
        specOf({
          method: 'POST',
          url: '/x',
          multipart: [
            { name: 'a', value: 'v' },
            { name: 'f', file },
          ],
        }),
      );

    await expect(attempt('nope.csv')).rejects.toThrow(
      new RequestError(`upload file "nope.csv" does not exist in files.uploadDir (${uploadDir})`),
    );
    await expect(attempt('link.txt')).rejects.toThrow(
      'upload file "link.txt" leads outside files.uploadDir (through a symbolic link); refused',
    );
    await expect(attempt('up/secret.txt')).rejects.toThrow('leads outside files.uploadDir');
    await expect(attempt('adir')).rejects.toThrow('upload file "adir" in files.uploadDir is not a regular file');
    await expect(attempt('nope.csv')).rejects.toBeInstanceOf(RequestError);
    expect(server.received).toHaveLength(0);

    // A link that stays inside uploadDir is fine.
    await writeFile(join(uploadDir, 'real.txt'), 'inside');
    await symlink(join(uploadDir, 'real.txt'), join(uploadDir, 'alias.txt'));
    await http.send(specOf({ method: 'POST', url: '/x', bodyFile: 'alias.txt' }));
    expect(server.received[0]!.body!.toString()).toBe('inside');
  });

  it('says so when uploadDir itself is missing on the worker', async () => {
    const spec = specOf({ method: 'POST', url: '/x', bodyFile: 'a.txt' });
    await rm(uploadDir, { recursive: true });
    await expect(http.send(spec)).rejects.toThrow(`files.uploadDir ${uploadDir} does not exist on this worker`);
  });
});

describe('downloads', () => {
  it('streams an accepted body to its file, decoded, with its size and SHA-256, and leaves no temporary file', async () => {
    const n = 3 * 1024 * 1024 + 5;
    const response = await http.send(specOf({ method: 'GET', url: `/bytes?n=${n}&gzip=1`, download: { path: 'a/b/c.bin' } }));
    const sent = server.sent.get(`/bytes?n=${n}&gzip=1`)!;
    expect(response.status).toBe(200);
    expect(response.download).toEqual({ path: join(downloadDir, 'a/b/c.bin'), bytes: n, sha256: sent.sha256 });
    expect(response.body).toEqual({ value: undefined, bytes: n, truncated: false });
    expect(sha256(await readFile(join(downloadDir, 'a/b/c.bin')))).toBe(sent.sha256);
    expect(await filesIn(downloadDir)).toEqual(['a', 'a/b', 'a/b/c.bin']);
  });

  it('names the file after the job by default and replaces an earlier file atomically', async () => {
    await writeFile(join(downloadDir, 'job-7'), 'old');
    const response = await http.send(specOf({ method: 'GET', url: '/bytes?n=10', download: true }, 'job-7'));
    expect(response.download).toMatchObject({ path: join(downloadDir, 'job-7'), bytes: 10 });
    expect((await readFile(join(downloadDir, 'job-7'))).byteLength).toBe(10);
    expect(await filesIn(downloadDir)).toEqual(['job-7']);
  });

  it('reads a status that is not accepted the usual capped way, and writes no file', async () => {
    server.route('/missing', (_request, response) => {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'no such export' }));
    });
    const response = await http.send(specOf({ method: 'GET', url: '/missing', download: true }));
    expect(response.status).toBe(404);
    expect(response.download).toBeUndefined();
    expect(response.body.value).toEqual({ error: 'no such export' });
    expect(await filesIn(downloadDir)).toEqual([]);

    // An accepted non-2xx status is downloaded.
    const partial = await http.send(specOf({ method: 'GET', url: '/bytes?n=4&status=206', download: true, expect: { status: [206] } }));
    expect(partial.download).toMatchObject({ bytes: 4 });
  });

  it('stops at download.maxBytes with a RESPONSE_TOO_LARGE problem; the response size cap does not apply', async () => {
    const small = createHttpClient({ maxResponseBytes: 1_024 });
    try {
      const big = await small.send(specOf({ method: 'GET', url: '/bytes?n=200000', download: { path: 'big.bin' } }));
      expect(big.download).toMatchObject({ bytes: 200_000 });
      const capped = await small.send(
        specOf({ method: 'GET', url: '/bytes?n=5000000', download: { path: 'capped.bin', maxBytes: 100_000 } }),
      );
      expect(capped.download).toBeUndefined();
      expect(capped.body.problem).toEqual({
        code: 'RESPONSE_TOO_LARGE',
        message: 'response body is larger than download.maxBytes (100000 bytes, decoded); the download was stopped',
      });
      expect(await filesIn(downloadDir)).toEqual(['big.bin']);
    } finally {
      await small.close();
    }
  });

  it('removes the temporary file when the connection breaks mid-body or the encoding is corrupt', async () => {
    await expect(http.send(specOf({ method: 'GET', url: '/bytes?n=4000000&cut=1', download: true }))).rejects.toBeInstanceOf(NetworkError);
    expect(await filesIn(downloadDir)).toEqual([]);

    const corrupt = gzipSync(Buffer.alloc(100_000, 7)).subarray(0, 200);
    server.route('/corrupt', (_request, response) => {
      response.writeHead(200, { 'content-encoding': 'gzip' });
      response.end(Buffer.concat([corrupt, Buffer.from('garbage that is not gzip')]));
    });
    const response = await http.send(specOf({ method: 'GET', url: '/corrupt', download: true }));
    expect(response.body.problem?.code).toBe('BAD_ENCODING');
    expect(await filesIn(downloadDir)).toEqual([]);
  });

  it('reports a file that cannot be written as a retryable FileAccessError, and removes the temporary file', async () => {
    server.route('/late', async (_request, response) => {
      // Something takes the final name while the body is on its way: the rename onto it fails.
      await mkdir(join(downloadDir, 'late/inside'), { recursive: true });
      response.writeHead(200);
      response.end('body');
    });
    const error: unknown = await http
      .send(specOf({ method: 'GET', url: '/late', download: { path: 'late' } }))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FileAccessError);
    expect((error as FileAccessError).message).toMatch(/^cannot rename download .*late: /);
    expect(classifyError(error)).toMatchObject({ kind: 'retry', code: expect.stringMatching(/^FILE_E/) });
    expect(await filesIn(downloadDir)).toEqual(['late', 'late/inside']);
  });

  it('refuses a download path through a symbolic link out of downloadDir, before the request is sent', async () => {
    await symlink(root, join(downloadDir, 'escape'));
    await expect(http.send(specOf({ method: 'GET', url: '/bytes?n=10', download: { path: 'escape/x.bin' } }))).rejects.toThrow(
      'download path "escape/x.bin" leads outside files.downloadDir (through a symbolic link); refused',
    );
    await mkdir(join(downloadDir, 'taken'));
    await expect(http.send(specOf({ method: 'GET', url: '/bytes?n=10', download: { path: 'taken' } }))).rejects.toThrow(
      'download path "taken" is a directory',
    );
    expect(server.received).toHaveLength(0);
    expect(await filesIn(root)).not.toContain('x.bin');
  });
});
