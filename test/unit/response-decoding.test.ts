import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NetworkError } from '../../src/errors.js';
import { codingsToUndo } from '../../src/http/decode-body.js';
import { createHttpClient, DEFAULT_MAX_RESPONSE_BYTES, type HttpClient, type HttpClientOptions } from '../../src/http/http-client.js';
import { readCappedBody } from '../../src/http/read-body.js';
import type { RequestSpec } from '../../src/http/request-spec.js';
import { useRouteServer, type RouteHandler } from '../helpers/route-server.js';

const TIMEOUTS = { connect: 5_000, headers: 10_000, total: 20_000 };
const gzip = promisify(zlib.gzip);

const DOC = { items: Array.from({ length: 400 }, (_, i) => ({ id: `item-${i}`, label: 'é€ unicode', n: i })) };
const DOC_TEXT = JSON.stringify(DOC);
const DOC_BYTES = Buffer.byteLength(DOC_TEXT);
const json = { 'content-type': 'application/json' };

/** 50 MB of zeros, gzipped to about 50 KB: a compression bomb. */
let bomb: Buffer;
/** How the last streamed answer ended: `finished` when every byte was written, `closed` when the client hung up first. */
let streamEnd: Promise<'finished' | 'closed'> = Promise.resolve('finished');

const routes: Record<string, RouteHandler> = {
  '/gzip': (_request, response) => response.writeHead(200, { ...json, 'content-encoding': 'gzip' }).end(zlib.gzipSync(DOC_TEXT)),
  '/x-gzip': (_request, response) => response.writeHead(200, { ...json, 'content-encoding': 'x-gzip' }).end(zlib.gzipSync(DOC_TEXT)),
  '/deflate': (_request, response) => response.writeHead(200, { ...json, 'content-encoding': 'deflate' }).end(zlib.deflateSync(DOC_TEXT)),
  '/deflate-raw': (_request, response) =>
    response.writeHead(200, { ...json, 'content-encoding': 'deflate' }).end(zlib.deflateRawSync(DOC_TEXT)),
  '/br': (_request, response) => response.writeHead(200, { ...json, 'content-encoding': 'br' }).end(zlib.brotliCompressSync(DOC_TEXT)),
  // Deflated first, then gzipped: undone in the opposite order.
  '/layered': (_request, response) =>
    response.writeHead(200, { ...json, 'content-encoding': 'deflate, gzip' }).end(zlib.gzipSync(zlib.deflateSync(DOC_TEXT))),
  '/unknown-coding': (_request, response) =>
    response.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'zstd' }).end('not really zstd'),
  '/gzip-in-chunks': (_request, response) => {
    // Many small writes, so the decoder sees the compressed data in pieces.
    const data = zlib.gzipSync(DOC_TEXT);
    response.writeHead(200, { ...json, 'content-encoding': 'gzip' });
    let at = 0;
    const next = () => {
      if (at >= data.length) return void response.end();
      response.write(data.subarray(at, at + 97));
      at += 97;
      setImmediate(next);
    };
    next();
  },
  '/empty-gzip': (_request, response) => response.writeHead(204, { 'content-encoding': 'gzip' }).end(),
  '/corrupt-gzip': (_request, response) => {
    const data = zlib.gzipSync(DOC_TEXT);
    data.fill(0x55, 40, 60);
    response.writeHead(200, { ...json, 'content-encoding': 'gzip' }).end(data);
  },
  '/cut-gzip': (_request, response) => {
    const data = zlib.gzipSync(DOC_TEXT);
    response.writeHead(200, { ...json, 'content-encoding': 'gzip' }).end(data.subarray(0, data.length - 200));
  },
  '/corrupt-br-503': (_request, response) => response.writeHead(503, { 'content-encoding': 'br' }).end('this is not brotli'),
  '/reset-mid-gzip': (request, response) => {
    const data = zlib.gzipSync(DOC_TEXT);
    response.writeHead(200, { ...json, 'content-encoding': 'gzip', 'content-length': String(data.length) });
    response.write(data.subarray(0, 100), () => setTimeout(() => request.socket.destroy(), 20));
  },
  '/bomb': (_request, response) =>
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' }).end(bomb),
  '/endless': (_request, response) => {
    // Plain bytes, 64 KiB at a time with backpressure, up to 200 MiB; tells how it ended.
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let left = 3_200;
    streamEnd = new Promise((resolve) => {
      response.on('close', () => resolve(response.writableFinished ? 'finished' : 'closed'));
    });
    const pump = () => {
      while (left > 0) {
        left -= 1;
        if (!response.write(chunk)) return void response.once('drain', pump);
      }
      response.end();
    };
    pump();
  },
  '/exactly-cap': (_request, response) =>
    response.writeHead(200, { 'content-encoding': 'gzip' }).end(zlib.gzipSync(Buffer.alloc(4_096, 0x62))),
};

const server = useRouteServer(routes);
/** The headers of the last request the server received. */
const lastHeaders = () => server().received.at(-1)?.headers;
const clients: HttpClient[] = [];

beforeAll(async () => {
  bomb = await gzip(Buffer.alloc(50 * 1024 * 1024), { level: 9 });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

function client(options?: HttpClientOptions): HttpClient {
  const created = createHttpClient(options);
  clients.push(created);
  return created;
}

function spec(path: string, overrides: Partial<RequestSpec> = {}): RequestSpec {
  return { method: 'GET', url: new URL(path, server().url), headers: {}, body: undefined, timeouts: TIMEOUTS, ...overrides };
}

describe('compressed responses', () => {
  it('asks for gzip and br, and decodes a gzip body before keeping it; bytes are decoded bytes', async () => {
    const response = await client({ maxBodyBytes: DOC_BYTES }).send(spec('/gzip'));
    expect(lastHeaders()?.['accept-encoding']).toBe('gzip, br');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ value: DOC, bytes: DOC_BYTES, truncated: false });
  });

  it.each(['/x-gzip', '/deflate', '/deflate-raw', '/br', '/layered', '/gzip-in-chunks'])('decodes %s', async (path) => {
    const response = await client({ maxBodyBytes: DOC_BYTES }).send(spec(path));
    expect(response.body).toEqual({ value: DOC, bytes: DOC_BYTES, truncated: false });
  });

  it('keeps the 8 KiB excerpt of the decoded text, and the whole text when the spec asks for it', async () => {
    const response = await client().send(spec('/br', { keepBodyText: true }));
    expect(response.body.truncated).toBe(true);
    expect(response.body.bytes).toBe(DOC_BYTES);
    expect(response.body.value).toBe(
      Buffer.from(DOC_TEXT)
        .subarray(0, 8 * 1024)
        .toString('utf8'),
    );
    expect(response.body.text).toBe(DOC_TEXT);
    const without = await client().send(spec('/br'));
    expect(without.body.text).toBeUndefined();
  });

  it('sends the accept-encoding the operation chose (even identity) instead of its own', async () => {
    await client().send(spec('/gzip', { headers: { 'Accept-Encoding': 'identity' } }));
    expect(lastHeaders()?.['accept-encoding']).toBe('identity');
  });

  it('reads a body in an unknown coding as it was sent', async () => {
    const response = await client().send(spec('/unknown-coding'));
    expect(response.body).toEqual({ value: 'not really zstd', bytes: 15, truncated: false });
  });

  it('has nothing to decode in an empty body', async () => {
    const response = await client().send(spec('/empty-gzip'));
    expect(response.status).toBe(204);
    expect(response.body).toEqual({ value: undefined, bytes: 0, truncated: false });
  });

  it.each(['/corrupt-gzip', '/cut-gzip'])('reports %s as a BAD_ENCODING problem, keeping the status', async (path) => {
    const http = client({ maxBodyBytes: DOC_BYTES });
    const response = await http.send(spec(path, { keepBodyText: true }));
    expect(response.status).toBe(200);
    expect(response.body.problem).toEqual({
      code: 'BAD_ENCODING',
      message: expect.stringContaining('cannot decode the response body (content-encoding: gzip)'),
    });
    expect(response.body.truncated).toBe(true);
    expect(response.body.text).toBeUndefined();
    // The client is fine afterwards.
    expect((await http.send(spec('/gzip'))).body.value).toEqual(DOC);
  });

  it('reports a corrupt body of an error status as a problem too (the status decides what happens)', async () => {
    const response = await client().send(spec('/corrupt-br-503'));
    expect(response.status).toBe(503);
    expect(response.body.problem?.code).toBe('BAD_ENCODING');
  });

  it('rejects with a NetworkError, not BAD_ENCODING, when the connection breaks mid-body', async () => {
    const error = await client()
      .send(spec('/reset-mid-gzip'))
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    expect(error).toBeInstanceOf(NetworkError);
  });
});

describe('the response size cap', () => {
  it('defaults to 10 MiB', () => {
    expect(DEFAULT_MAX_RESPONSE_BYTES).toBe(10 * 1024 * 1024);
  });

  it('stops decoding a compression bomb just past the cap', async () => {
    const response = await client({ maxBodyBytes: 100 }).send(spec('/bomb', { keepBodyText: true }));
    expect(response.status).toBe(200);
    expect(response.body.problem).toEqual({
      code: 'RESPONSE_TOO_LARGE',
      message: `response body is larger than ${DEFAULT_MAX_RESPONSE_BYTES} bytes (decoded; SLUICE_MAX_RESPONSE_BYTES); reading stopped`,
    });
    // Counted in decoded bytes, and no further than one decoder chunk past the cap (not 50 MB).
    expect(response.body.bytes).toBeGreaterThan(DEFAULT_MAX_RESPONSE_BYTES);
    expect(response.body.bytes).toBeLessThan(DEFAULT_MAX_RESPONSE_BYTES + 1024 * 1024);
    expect(response.body.value).toBe('\0'.repeat(100));
    expect(response.body.text).toBeUndefined();
  });

  it('stops reading a plain body at the cap and drops the connection', async () => {
    const cap = 1024 * 1024;
    const http = client({ maxResponseBytes: cap });
    const response = await http.send(spec('/endless'));
    expect(response.body.problem?.code).toBe('RESPONSE_TOO_LARGE');
    expect(response.body.problem?.message).toContain(`larger than ${cap} bytes`);
    expect(response.body.bytes).toBeLessThan(cap + 256 * 1024);
    // The server was still writing its 200 MiB when the client hung up.
    expect(await streamEnd).toBe('closed');
  });

  it('accepts a body of exactly the cap', async () => {
    const response = await client({ maxResponseBytes: 4_096, maxBodyBytes: 10 }).send(spec('/exactly-cap'));
    expect(response.body.problem).toBeUndefined();
    expect(response.body.bytes).toBe(4_096);
  });
});

describe('codingsToUndo', () => {
  it('lists the codings to undo, last applied first, ignoring identity and case', () => {
    expect(codingsToUndo('gzip')).toEqual(['gzip']);
    expect(codingsToUndo('X-GZIP')).toEqual(['gzip']);
    expect(codingsToUndo('deflate, br')).toEqual(['br', 'deflate']);
    expect(codingsToUndo('identity, gzip')).toEqual(['gzip']);
  });

  it('undoes nothing for no coding, identity, or a coding it does not know', () => {
    expect(codingsToUndo(undefined)).toBeUndefined();
    expect(codingsToUndo('identity')).toBeUndefined();
    expect(codingsToUndo('')).toBeUndefined();
    expect(codingsToUndo('gzip, zstd')).toBeUndefined();
    expect(codingsToUndo('constructor')).toBeUndefined();
  });
});

describe('readCappedBody with a content-encoding', () => {
  async function* parts(...chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
    for (const chunk of chunks) yield chunk;
  }

  it('decodes, then parses JSON and keeps the whole text (a BOM dropped)', async () => {
    const data = zlib.gzipSync(`\uFEFF${DOC_TEXT}`);
    const body = await readCappedBody(parts(data.subarray(0, 10), data.subarray(10)), 1_000_000, 'application/json', {
      contentEncoding: 'gzip',
      keepText: true,
    });
    expect(body.text).toBe(DOC_TEXT);
    expect(body.bytes).toBe(DOC_BYTES + 3);
  });

  it('passes on a failure of the body itself', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield zlib.gzipSync(DOC_TEXT).subarray(0, 50);
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    await expect(readCappedBody(failing(), 100, 'text/plain', { contentEncoding: 'gzip' })).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});
