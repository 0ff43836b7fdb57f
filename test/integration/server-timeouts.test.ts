/**
 * Slow and oversized requests over a real socket: headers and bodies that arrive a byte at a time
 * are cut off with a 408, `/login` takes only a small body, and a large body sent without a valid
 * token is refused before it is read.
 */
import { describe, expect, it } from 'vitest';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';
import { openRaw } from '../helpers/raw-http.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { EMPTY_CONFIG } from '../../src/config/sluice-config.js';
import { buildServer } from '../../src/server/build-server.js';
import { parseApiTokens } from '../../src/server/api-tokens.js';
import { createLogger } from '../../src/observability/logger.js';

const redis = useRedisServer();

type Timeouts = { headersTimeoutMs?: number; requestTimeoutMs?: number; signInTimeoutMs?: number };

function start(timeouts: Timeouts = {}): Promise<ApiServer> {
  return startApiServer({ redis: redis().client, config: EMPTY_CONFIG, queue: uniqueQueue('slow'), ...timeouts });
}

const host = (api: ApiServer) => new URL(api.url).host;

/** The status line and the JSON body of a raw answer. */
function answer(raw: string): { status: number; type: string | undefined; body: Record<string, unknown> | undefined } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  const type = /^content-type: *(.+)$/im.exec(head)?.[1];
  const text = raw.slice(head.length + 4);
  try {
    return { status, type, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status, type, body: undefined };
  }
}

const REQUEST_TIMEOUT_PROBLEM = {
  type: '/problems/request-timeout',
  title: 'The request did not arrive in time',
  status: 408,
  code: 'REQUEST_TIMEOUT',
};

describe('slow requests are cut off', () => {
  it('answers 408 and closes the connection when a body arrives too slowly (POST /v1/operations, with a valid token)', async () => {
    const api = await start({ headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    // JSON is read by fastify's parser, NDJSON by the route itself as a stream: both are cut.
    for (const type of ['application/json', 'application/x-ndjson']) {
      const raw = await openRaw(api.url);
      raw.write(
        `POST /v1/operations HTTP/1.1\r\nHost: ${host(api)}\r\nAuthorization: Bearer ${TOKENS.enqueue}\r\n` +
          `Content-Type: ${type}\r\nContent-Length: 2000\r\n\r\n`,
      );
      raw.drip('['.padEnd(2_000, ' '), 100);
      expect(await raw.closedWithin(8_000), type).toBe('closed');
      const { status, body, type: answerType } = answer(raw.received());
      expect(status, type).toBe(408);
      expect(answerType, type).toBe('application/problem+json; charset=utf-8');
      expect(body).toMatchObject(REQUEST_TIMEOUT_PROBLEM);
      expect(String(body?.['detail'])).toContain('1000 ms');
      expect(body?.['message']).toBe(body?.['detail']);
    }
    expect((await api.call('/healthz', { role: null })).status).toBe(200);
  });

  it('answers 408 and closes the connection when headers arrive too slowly', async () => {
    const api = await start({ headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    const raw = await openRaw(api.url);
    raw.write(`GET /healthz HTTP/1.1\r\nHost: ${host(api)}\r\n`);
    raw.drip('X-Slow: '.padEnd(500, 'x'), 100);
    expect(await raw.closedWithin(8_000)).toBe('closed');
    expect(answer(raw.received())).toMatchObject({
      status: 408,
      type: 'application/problem+json; charset=utf-8',
      body: REQUEST_TIMEOUT_PROBLEM,
    });
    // A connection that never sends a byte is closed too.
    const silent = await openRaw(api.url);
    expect(await silent.closedWithin(8_000)).toBe('closed');
  });

  it('gives a sign-in body its own short deadline, whatever the request timeout', async () => {
    const api = await start({ signInTimeoutMs: 500 });
    // Refused at once for its size: its deadline must not go off later (that once crashed the server).
    const oversized = await openRaw(api.url);
    oversized.write(`POST /login HTTP/1.1\r\nHost: ${host(api)}\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n`);
    expect(await oversized.closedWithin(5_000)).toBe('closed');
    expect(answer(oversized.received()).status).toBe(413);
    const raw = await openRaw(api.url);
    raw.write(`POST /login HTTP/1.1\r\nHost: ${host(api)}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n`);
    raw.drip(`{"token":"${'x'.repeat(180)}"}`, 100);
    expect(await raw.closedWithin(8_000)).toBe('closed');
    const { status, body } = answer(raw.received());
    expect(status).toBe(408);
    expect(body).toMatchObject({ ...REQUEST_TIMEOUT_PROBLEM, detail: 'the request body did not arrive within 500 ms', instance: '/login' });
    expect((await api.call('/healthz', { role: null })).status).toBe(200);
  });

  it('keeps requests that arrive in time, a keep-alive connection included', async () => {
    const api = await start({ headersTimeoutMs: 500, requestTimeoutMs: 1_000, signInTimeoutMs: 500 });
    const raw = await openRaw(api.url);
    raw.write(`GET /healthz HTTP/1.1\r\nHost: ${host(api)}\r\n\r\n`);
    expect(await raw.receivedWithin('{"status":"ok"}', 5_000)).toBe(true);
    const login = await api.call('/login', { method: 'POST', role: null, json: { token: TOKENS.read } });
    expect(login.status).toBe(200);
  });

  it('refuses timeouts that cannot work together, naming the options', async () => {
    const logger = createLogger({ level: 'silent' });
    const tokens = parseApiTokens(`${TOKENS.admin}:admin`);
    const build = (timeouts: Timeouts) => buildServer({ redis: redis().client, tokens, logger, ...timeouts });
    await expect(build({ headersTimeoutMs: 5_000, requestTimeoutMs: 1_000 })).rejects.toThrow(
      'headersTimeoutMs (5000) must not be larger than requestTimeoutMs (1000)',
    );
    await expect(build({ requestTimeoutMs: -1 })).rejects.toThrow('requestTimeoutMs: expected a whole number of ms');
  });
});

describe('large bodies without a valid token', () => {
  it('/login takes at most 4 KiB: a 30 MB body is refused with 413 before it is read', async () => {
    const api = await start();
    const raw = await openRaw(api.url);
    raw.write(
      `POST /login HTTP/1.1\r\nHost: ${host(api)}\r\nContent-Type: application/json\r\nContent-Length: ${30 * 1024 * 1024}\r\n\r\n`,
    );
    raw.write(`{"token":"${'x'.repeat(1_000)}`);
    expect(await raw.receivedWithin('\r\n\r\n', 5_000)).toBe(true);
    const { status, body } = answer(raw.received());
    expect(status).toBe(413);
    expect(body).toMatchObject({ code: 'BODY_TOO_LARGE' });
    expect(String(body?.['message'])).toContain('4096 bytes');
    expect(await raw.closedWithin(5_000)).toBe('closed');

    // Without a Content-Length (chunked), reading stops at the limit.
    const text = `{"token":"${'x'.repeat(64 * 1024)}"}`;
    const chunked = await fetch(`${api.url}/login`, {
      method: 'POST',
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      }),
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('POST /v1/operations without a valid token: 401 at once, the connection closed, the 30 MB body never read', async () => {
    const api = await start();
    for (const authorization of ['', `Authorization: Bearer not-a-token-anyone-issued\r\n`]) {
      const raw = await openRaw(api.url);
      raw.write(
        `POST /v1/operations HTTP/1.1\r\nHost: ${host(api)}\r\n${authorization}` +
          `Content-Type: application/json\r\nContent-Length: ${30 * 1024 * 1024}\r\n\r\n[`,
      );
      expect(await raw.receivedWithin('\r\n\r\n', 5_000)).toBe(true);
      expect(answer(raw.received()).status).toBe(401);
      expect(raw.received().toLowerCase()).toContain('connection: close');
      // The server does not wait for (or drain) the 30 MB it was promised.
      expect(await raw.closedWithin(5_000)).toBe('closed');
    }
  });
});
