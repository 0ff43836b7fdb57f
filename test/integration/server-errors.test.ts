/**
 * Every error answer is problem details (RFC 9457, `application/problem+json`) with sluice's `code`;
 * a known path asked with a method it does not take is a 405 whose `Allow` names the ones it does.
 */
import { describe, expect, it } from 'vitest';
import { EMPTY_CONFIG } from '../../src/config/sluice-config.js';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();
const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

const start = () => startApiServer({ redis: redis().client, config: EMPTY_CONFIG, queue: uniqueQueue('errors') });

async function problemOf(response: Response): Promise<Record<string, unknown>> {
  expect(response.headers.get('content-type')).toBe(PROBLEM_JSON);
  return (await response.json()) as Record<string, unknown>;
}

describe('a wrong method on a known path', () => {
  it.each([
    ['DELETE', '/v1/batches/some-batch', 'GET, HEAD'],
    ['POST', '/v1/limits', 'GET, HEAD'],
    ['POST', '/v1/limits/', 'GET, HEAD'],
    ['PATCH', '/v1/limits/api.example.com', 'DELETE, PUT'],
    ['GET', '/v1/dead-letters/replay', 'POST'],
    ['PUT', '/v1/dead-letters', 'DELETE, GET, HEAD'],
    ['GET', '/v1/operations?queue=x', 'POST'],
    ['OPTIONS', '/v1/operations/u-123', 'GET, HEAD'],
    ['DELETE', '/openapi.json', 'GET, HEAD'],
    ['GET', '/login', 'POST'],
  ])('%s %s answers 405 with Allow: %s, before any token is asked for', async (method, path, allow) => {
    const api = await start();
    const response = await api.call(path, { method, role: null });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe(allow);
    const bare = path.split('?')[0]!;
    expect(await problemOf(response)).toEqual({
      type: '/problems/method-not-allowed',
      title: 'Method not allowed on this path',
      status: 405,
      detail: `${bare} does not take ${method}: it takes ${allow}`,
      instance: bare,
      code: 'METHOD_NOT_ALLOWED',
      message: `${bare} does not take ${method}: it takes ${allow}`,
    });
  });
});

describe('an unknown path', () => {
  it.each([
    ['GET', '/v1/nothing-here'],
    ['POST', '/v1/batches/a/b/c'],
    ['DELETE', '/v2/operations'],
  ])('%s %s answers 404 problem details, with no Allow', async (method, path) => {
    const api = await start();
    const response = await api.call(path, { method });
    expect(response.status).toBe(404);
    expect(response.headers.get('allow')).toBeNull();
    expect(await problemOf(response)).toEqual({
      type: '/problems/not-found',
      title: 'Not found',
      status: 404,
      detail: `no route ${method} ${path}`,
      instance: path,
      code: 'NOT_FOUND',
      message: `no route ${method} ${path}`,
    });
  });
});

describe('problem details', () => {
  async function enqueue(api: ApiServer, body: string | Uint8Array, type: string) {
    return api.call('/v1/operations', { method: 'POST', role: 'enqueue', body, headers: { 'content-type': type } });
  }

  it('keeps the validation issues as the `errors` extension, and names the type after the code', async () => {
    const api = await start();
    const response = await enqueue(api, '{"method":"GET","url":"ftp://nope"}\n{"method":', 'application/x-ndjson');
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect(problem).toMatchObject({
      type: '/problems/validation-failed',
      title: 'The request is invalid',
      status: 400,
      detail: '2 of 2 operations are invalid; nothing was enqueued',
      instance: '/v1/operations',
      code: 'VALIDATION_FAILED',
      message: '2 of 2 operations are invalid; nothing was enqueued',
    });
    expect(problem['errors']).toEqual([
      { index: 0, line: 1, path: 'url', message: expect.any(String) },
      { index: 1, line: 2, path: '', message: expect.stringContaining('not JSON') },
    ]);
  });

  it("answers fastify's own errors (bad JSON, a type no route takes) and a query's token-free path the same way", async () => {
    const api = await start();
    const badJson = await problemOf(await enqueue(api, '{"method":', 'application/json'));
    expect(badJson).toMatchObject({ type: '/problems/bad-json', title: 'The body is not valid JSON', status: 400, code: 'BAD_JSON' });
    // Where it breaks, in JSON.parse's words.
    const comma = await problemOf(await enqueue(api, '{"method":"GET",\n "url": "/x",,\n}', 'application/json'));
    expect(comma).toMatchObject({
      code: 'BAD_JSON',
      detail: expect.stringMatching(/^the body is not valid JSON: .*position 30 \(line 2 column 14\)$/),
    });
    // One operation a line, sent as JSON: the type to send it as is named.
    const lines = await problemOf(await enqueue(api, '{"method":"GET","url":"/a"}\n{"method":"GET","url":"/b"}\n', 'application/json'));
    expect(lines['detail']).toMatch(/send Content-Type: application\/x-ndjson \(or one JSON array\)$/);
    // Bytes that are not UTF-8 are refused, naming the first, rather than read as U+FFFD and sent on.
    const latin1 = Buffer.concat([Buffer.from('{"method":"GET","url":"/lat'), Buffer.from([0xe9]), Buffer.from('","target":"t"}')]);
    const notUtf8 = await enqueue(api, latin1, 'application/json');
    expect(notUtf8.status).toBe(400);
    expect(await problemOf(notUtf8)).toMatchObject({
      code: 'BAD_JSON',
      detail: 'the body is not valid UTF-8 at byte 28; send JSON in UTF-8',
    });
    const unsupported = await enqueue(api, 'hello', 'text/plain');
    expect(unsupported.status).toBe(415);
    expect(await problemOf(unsupported)).toMatchObject({
      type: '/problems/unsupported-media-type',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
    // `instance` is the path: a token in the query string is not echoed back.
    const refused = await api.call('/v1/limits?access_token=secret-in-the-query', { role: null });
    expect(refused.status).toBe(401);
    expect(await problemOf(refused)).toMatchObject({ status: 401, code: 'UNAUTHORIZED', instance: '/v1/limits' });
  });
});

describe('an empty body sent as application/json', () => {
  it('is no body: routes that take none answer as without the header; routes that need one name it', async () => {
    const api = await start();
    const json = { 'content-type': 'application/json' };
    // A route that takes no body (many clients send the header on every request).
    const pause = await api.call('/v1/limits/api.example.com/pause', { method: 'POST', role: 'admin', headers: json, body: '' });
    expect(pause.status).toBe(200);
    const reset = await api.call('/v1/limits/api.example.com', { method: 'DELETE', role: 'admin', headers: json, body: '' });
    expect(reset.status).toBe(200);
    // A route whose body is JSON: the body is missing, named as such.
    const set = await api.call('/v1/limits/api.example.com', { method: 'PUT', role: 'admin', headers: json, body: '' });
    expect(set.status).toBe(400);
    expect(await problemOf(set)).toMatchObject({ code: 'VALIDATION_FAILED', errors: [expect.objectContaining({ path: 'body' })] });
    // Enqueueing nothing is still its own error.
    const enqueue = await api.call('/v1/operations', { method: 'POST', role: 'enqueue', headers: json, body: '' });
    expect(enqueue.status).toBe(400);
    expect(await problemOf(enqueue)).toMatchObject({ code: 'EMPTY_BODY' });
    // Bad JSON stays bad JSON, and a poisoned prototype is refused as before.
    const bad = await api.call('/v1/limits/api.example.com', { method: 'PUT', role: 'admin', headers: json, body: '{"rps":' });
    expect(await problemOf(bad)).toMatchObject({ status: 400, code: 'BAD_JSON' });
    const poisoned = await api.call('/v1/limits/api.example.com', {
      method: 'PUT',
      role: 'admin',
      headers: json,
      body: '{"__proto__":{"x":1},"requestsPerSecond":5}',
    });
    expect(poisoned.status).toBe(400);
    expect(await problemOf(poisoned)).toMatchObject({ code: 'BAD_JSON', detail: expect.stringContaining('__proto__') });
  });
});

describe('a path part that names nothing', () => {
  it('is a 404 that says which part of the path is wrong', async () => {
    const api = await start();
    const empty = await api.call('/v1/batches//results', { role: 'read' });
    expect(empty.status).toBe(404);
    expect(await problemOf(empty)).toMatchObject({ code: 'NOT_FOUND', detail: 'no such resource: the {id} part of the path is empty' });
    const bad = await api.call(`/v1/batches/${'x'.repeat(300)}`, { role: 'read' });
    expect(bad.status).toBe(404);
    expect(((await problemOf(bad)) as { detail: string }).detail).toMatch(/^no such resource: \{id\}: \S/);
  });
});
