import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NetworkError, RequestError, ShutdownAbortError, TimeoutError } from '../../src/errors.js';
import { createHttpClient, type HttpClient } from '../../src/http/http-client.js';
import type { RequestSpec } from '../../src/http/request-spec.js';
import { useRouteServer, type RouteHandler } from '../helpers/route-server.js';

/** Timeouts small enough that a hung server is noticed fast, large enough for a busy 2-core machine. */
const FAST = { connect: 1_000, headers: 200, total: 2_000 };
const RELAXED = { connect: 5_000, headers: 10_000, total: 10_000 };

const OK_BODY = JSON.stringify({ id: 7, status: 'created' });

/** A tiny loopback server: one handler per path, every request recorded. */
const routes: Record<string, RouteHandler> = {
  '/ok': (_request, response) => {
    response.writeHead(201, {
      'content-type': 'application/json',
      location: '/orders/7',
      etag: '"v1"',
      'x-request-id': 'req-123',
      'x-other': 'dropped',
    });
    response.end(OK_BODY);
  },
  '/echo': (request, response, body) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end(`${request.method} ${body}`);
  },
  '/busy': (_request, response) => {
    response.writeHead(503, { 'retry-after': '2', 'content-type': 'text/plain' });
    response.end('busy');
  },
  '/busy-until': (_request, response) => {
    response.writeHead(429, { 'retry-after': new Date(Date.now() + 60_000).toUTCString() });
    response.end();
  },
  '/big': (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ data: 'x'.repeat(10_000) }));
  },
  '/other-request-id': (_request, response) => {
    response.writeHead(204, { 'x-amzn-requestid': 'amzn-1' });
    response.end();
  },
  '/hang': () => {
    // Never answers; the socket is destroyed when the server closes.
  },
  '/dribble': (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => response.write('.'), 50);
    response.on('close', () => clearInterval(timer));
  },
};

const server = useRouteServer(routes);
const received = () => server().received;
const clients: HttpClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

function client(options?: Parameters<typeof createHttpClient>[0]): HttpClient {
  const created = createHttpClient(options);
  clients.push(created);
  return created;
}

function spec(path: string, overrides: Partial<RequestSpec> = {}): RequestSpec {
  return { method: 'GET', url: new URL(path, server().url), headers: {}, body: undefined, timeouts: RELAXED, ...overrides };
}

/** Resolves with what `promise` rejected with; fails when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('createHttpClient().send', () => {
  it('returns the status, the picked headers and the parsed body', async () => {
    const response = await client().send(spec('/ok?x=1'));
    expect(response).toMatchObject({
      status: 201,
      headers: { contentType: 'application/json', location: '/orders/7', etag: '"v1"', requestId: 'req-123' },
      body: { value: { id: 7, status: 'created' }, bytes: Buffer.byteLength(OK_BODY), truncated: false },
      retryAfterMs: undefined,
    });
    expect(Object.keys(response.headers).sort()).toEqual(['contentType', 'etag', 'location', 'requestId']);
    expect(response.durationMs).toBeGreaterThanOrEqual(0);
    expect(received().at(-1)).toMatchObject({ method: 'GET', path: '/ok?x=1' });
  });

  it('sends the method, headers and body of the spec', async () => {
    const response = await client().send(
      spec('/echo', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' }, body: '{"a":1}' }),
    );
    expect(response.status).toBe(200);
    expect(response.body.value).toBe('POST {"a":1}');
    const request = received().at(-1);
    expect(request?.headers).toMatchObject({ 'content-type': 'application/json', 'idempotency-key': 'k-1' });
    expect(request?.body).toBe('{"a":1}');
  });

  it('picks another request-id header when x-request-id is absent', async () => {
    const response = await client().send(spec('/other-request-id'));
    expect(response).toMatchObject({ status: 204, headers: { requestId: 'amzn-1' }, body: { value: undefined, bytes: 0 } });
  });

  it('resolves with an error status rather than rejecting, and parses Retry-After seconds', async () => {
    const response = await client().send(spec('/busy'));
    expect(response).toMatchObject({ status: 503, retryAfterMs: 2_000, body: { value: 'busy' } });
  });

  it('parses a Retry-After HTTP date into milliseconds from now', async () => {
    const response = await client().send(spec('/busy-until'));
    expect(response.status).toBe(429);
    // The date has one-second precision and the request takes a moment.
    expect(response.retryAfterMs).toBeGreaterThan(55_000);
    expect(response.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('keeps at most maxBodyBytes of the body', async () => {
    const response = await client({ maxBodyBytes: 100 }).send(spec('/big'));
    expect(response.body.truncated).toBe(true);
    expect(response.body.bytes).toBe(10_011);
    expect(response.body.value).toBe(`{"data":"${'x'.repeat(91)}`);
  });

  it('reuses keep-alive connections instead of opening one per request', async () => {
    const http = client();
    const before = received().length;
    for (let i = 0; i < 20; i++) await http.send(spec('/ok'));
    const ports = new Set(
      received()
        .slice(before)
        .map((request) => request.remotePort),
    );
    // undici frees a connection a tick after its body ends, so back-to-back requests may alternate
    // between two connections; what matters is that 20 requests do not open 20.
    expect(received().length - before).toBe(20);
    expect(ports.size).toBeLessThanOrEqual(2);
  });

  it('times out in the headers phase when the server never answers', async () => {
    const started = performance.now();
    const error = await rejection(client().send(spec('/hang', { timeouts: FAST })));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ phase: 'headers', code: 'TIMEOUT_HEADERS' });
    expect(performance.now() - started).toBeLessThan(FAST.total);
  });

  it('times out on the total deadline while the body is still dribbling in', async () => {
    const timeouts = { connect: 1_000, headers: 1_000, total: 500 };
    const started = performance.now();
    const error = await rejection(client().send(spec('/dribble', { timeouts })));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(['total', 'body']).toContain((error as TimeoutError).phase);
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('fails with ECONNREFUSED on a closed port', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await rejection(client().send(spec(`http://127.0.0.1:${port}/x`, { timeouts: FAST })));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', message: expect.stringContaining(`GET http://127.0.0.1:${port}/x failed`) });
  });

  it('rejects with ShutdownAbortError when the external signal aborts mid-request', async () => {
    const controller = new AbortController();
    const sending = client().send(spec('/hang'), controller.signal);
    // Let the request reach the server before aborting it.
    const before = received().length;
    await expect.poll(() => received().length, { timeout: 5_000 }).toBeGreaterThan(before);
    controller.abort();
    expect(await rejection(sending)).toBeInstanceOf(ShutdownAbortError);
  });

  it('rejects with ShutdownAbortError for an already aborted signal', async () => {
    const error = await rejection(client().send(spec('/ok'), AbortSignal.abort()));
    expect(error).toBeInstanceOf(ShutdownAbortError);
    expect(error).toMatchObject({ code: 'SHUTDOWN_ABORT' });
  });

  it('rejects with RequestError for a header value undici refuses', async () => {
    const error = await rejection(client().send(spec('/ok', { headers: { 'x-bad': 'a\r\nx-injected: 1' } })));
    expect(error).toBeInstanceOf(RequestError);
    expect(error).toMatchObject({ code: 'REQUEST_INVALID' });
  });

  it('refuses to send after close, and close is idempotent', async () => {
    const http = createHttpClient();
    await http.send(spec('/ok'));
    const closing = http.close();
    expect(http.close()).toBe(closing);
    await closing;
    expect(await rejection(http.send(spec('/ok')))).toBeInstanceOf(ShutdownAbortError);
  });
});
