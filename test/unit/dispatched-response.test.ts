import { once } from 'node:events';
import { Agent } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { dispatchRequest, type AbortSource, type DispatchedResponse } from '../../src/http/dispatched-response.js';
import { useRouteServer } from '../helpers/route-server.js';

/** What the big route has written so far (it writes only as fast as the client reads). */
let bigWritten = 0;
const BIG_BYTES = 64 * 1024 * 1024;

const server = useRouteServer({
  '/hints': (_request, response) => {
    response.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    response.writeHead(200, { 'content-type': 'text/plain', 'x-one': 'a' });
    response.end('after the hints');
  },
  '/redirect': (_request, response) => {
    response.writeHead(302, { location: '/hints', 'content-type': 'text/plain' });
    response.end('moved');
  },
  '/big': (_request, response) => {
    bigWritten = 0;
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(256 * 1024, 7);
    const write = () => {
      while (bigWritten < BIG_BYTES) {
        bigWritten += chunk.length;
        if (!response.write(chunk)) {
          response.once('drain', write);
          return;
        }
      }
      response.end();
    };
    write();
  },
  '/slow': (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.write('first part;');
    // The rest never comes: the socket is destroyed when the server closes.
  },
});

/** An abort of our own, as http-client.ts's RequestAbort is. */
class TestAbort implements AbortSource {
  aborted = false;
  reason: unknown;
  listeners: (() => void)[] = [];
  once(_event: 'abort', listener: () => void) {
    this.listeners.push(listener);
    return this;
  }
  removeListener(_event: 'abort', listener: () => void) {
    this.listeners = this.listeners.filter((l) => l !== listener);
    return this;
  }
  abort(reason: unknown) {
    this.aborted = true;
    this.reason = reason;
    for (const listener of this.listeners) listener();
  }
}

const agent = new Agent();
/** One connection at most: the next request goes on the same one unless it was closed. */
const single = new Agent({ connections: 1 });
afterAll(() => Promise.all([agent.close(), single.close()]));

function get(path: string, abort: AbortSource = new TestAbort(), through = agent): Promise<DispatchedResponse> {
  const url = new URL(path, server().url);
  return dispatchRequest(
    through,
    { origin: url.origin, path: url.pathname, method: 'GET', headersTimeout: 5_000, bodyTimeout: 10_000 },
    abort,
  );
}

async function text(response: DispatchedResponse): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

describe('dispatchRequest', () => {
  it('skips an informational 1xx and resolves with the final status, headers and body', async () => {
    const response = await get('/hints');
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-one']).toBe('a');
    expect(await text(response)).toBe('after the hints');
  });

  it('rejects with the reason of an abort that came before the request was sent, sending nothing', async () => {
    const abort = new TestAbort();
    const reason = new Error('stopped before');
    abort.abort(reason);
    const before = server().received.length;
    await expect(get('/hints', abort)).rejects.toBe(reason);
    expect(server().received.length).toBe(before);
  });

  it('fails the body with the reason of an abort during the body, and stops listening once done', async () => {
    const abort = new TestAbort();
    const response = await get('/slow', abort);
    const reading = text(response);
    const reason = new Error('stopped during');
    setTimeout(() => abort.abort(reason), 50);
    await expect(reading).rejects.toBe(reason);
    expect(abort.listeners).toEqual([]);
    // A request that ended leaves no listener behind either.
    const done = new TestAbort();
    await text(await get('/hints', done));
    expect(done.listeners).toEqual([]);
  });

  it('dump reads a short body so the next request reuses the connection; destroy drops it', async () => {
    const first = await get('/redirect', new TestAbort(), single);
    await first.body.dump();
    await text(await get('/hints', new TestAbort(), single));
    const [dumped, reused] = server().received.slice(-2);
    expect(reused!.remotePort).toBe(dumped!.remotePort);

    const slow = await get('/slow', new TestAbort(), single);
    slow.body.destroy();
    await text(await get('/hints', new TestAbort(), single));
    const [destroyed, fresh] = server().received.slice(-2);
    expect(fresh!.remotePort).not.toBe(destroyed!.remotePort);
  });

  it('holds back a body nobody reads (the server waits), then delivers all of it', async () => {
    const response = await get('/big');
    // Unread for a while: the handler pauses the socket past its high-water mark, so the server
    // stops at what the socket buffers hold, far short of the whole body.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(bigWritten).toBeLessThan(BIG_BYTES / 2);
    let bytes = 0;
    for await (const chunk of response.body) bytes += chunk.byteLength;
    expect(bytes).toBe(BIG_BYTES);
  });

  it('a reader that stops early (break) ends the request', async () => {
    const response = await get('/big');
    const disconnected = once(agent, 'disconnect');
    for await (const chunk of response.body) {
      expect(chunk.byteLength).toBeGreaterThan(0);
      break;
    }
    // The connection is closed, short of the whole body.
    await disconnected;
    expect(bigWritten).toBeLessThan(BIG_BYTES);
  });

  it('refuses CONNECT (undici would hand over the connection, and nothing would answer) as an invalid request', async () => {
    const url = new URL(server().url);
    const connect = dispatchRequest(agent, { origin: url.origin, path: '/', method: 'CONNECT' }, new TestAbort());
    await expect(connect).rejects.toMatchObject({ code: 'UND_ERR_INVALID_ARG' });
  });

  it('an abort while the request waits for a connection rejects it at once', async () => {
    const held = await get('/slow', new TestAbort(), single);
    const abort = new TestAbort();
    const queued = get('/hints', abort, single);
    const reason = new Error('deadline while queued');
    setTimeout(() => abort.abort(reason), 50);
    await expect(queued).rejects.toBe(reason);
    held.body.destroy();
  });

  it.each([
    ['after the body arrived and before it was read fails the read, with nothing of the body', '/hints', 50],
    ['during a paused body drops what was queued: the reader gets the reason next', '/big', 200],
  ])('an abort %s', async (_what, path, waitMs) => {
    const abort = new TestAbort();
    const response = await get(path, abort);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    const reason = new Error('stopped');
    abort.abort(reason);
    await expect(response.body[Symbol.asyncIterator]().next()).rejects.toBe(reason);
  });

  it('one reader at a time; after return() the body reads as done', async () => {
    const response = await get('/slow');
    const reader = response.body[Symbol.asyncIterator]();
    await expect(reader.next()).resolves.toMatchObject({ done: false });
    const waiting = reader.next();
    await expect(reader.next()).rejects.toThrow('one reader at a time');
    await reader.return!();
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
    await expect(reader.next()).resolves.toEqual({ done: true, value: undefined });
  });
});
