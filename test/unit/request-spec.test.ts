import { describe, expect, it } from 'vitest';
import { parseSluiceConfig, type SluiceConfig, type Target } from '../../src/config/sluice-config.js';
import { buildRequestSpec } from '../../src/http/request-spec.js';
import { parseOperation } from '../../src/operation/parse-operation.js';
import type { Operation, OperationInput } from '../../src/operation/schema.js';

const CONFIG: SluiceConfig = parseSluiceConfig({
  targets: {
    v2: { baseUrl: 'http://h/v2', headers: { Authorization: 'Bearer target', 'X-Client': 'sluice', Accept: 'text/plain' } },
    slash: { baseUrl: 'http://h/api/' },
    keyed: { baseUrl: 'https://h.example.com/base?api_key=k1' },
  },
  allowedHosts: ['*.example.com', 'example.com'],
});

/** Validates an operation through the real schema (defaults filled) and resolves its target. */
function op(input: OperationInput): { operation: Operation; target: Target | undefined } {
  const result = parseOperation(input, CONFIG);
  if (!result.ok) throw new Error(`invalid operation in test: ${JSON.stringify(result.issues)}`);
  const operation = result.operation;
  return { operation, target: operation.target === undefined ? undefined : CONFIG.targets[operation.target] };
}

function spec(input: OperationInput, idempotencyKey = 'job-key-1') {
  const { operation, target } = op(input);
  return buildRequestSpec(operation, target, idempotencyKey);
}

describe('buildRequestSpec: URL', () => {
  it('joins a path to a baseUrl with a path prefix', () => {
    expect(spec({ method: 'GET', url: '/orders', target: 'v2' }).url.href).toBe('http://h/v2/orders');
  });

  it('does not double a trailing slash of the baseUrl', () => {
    expect(spec({ method: 'GET', url: '/orders/7', target: 'slash' }).url.href).toBe('http://h/api/orders/7');
  });

  it('keeps the query of the baseUrl and appends the operation query after it', () => {
    const url = spec({ method: 'GET', url: '/items?page=2', target: 'keyed', query: { q: 'x' } }).url;
    expect(url.pathname).toBe('/base/items');
    expect([...url.searchParams]).toEqual([
      ['page', '2'],
      ['api_key', 'k1'],
      ['q', 'x'],
    ]);
  });

  it('uses an absolute URL as given', () => {
    expect(spec({ method: 'GET', url: 'https://other.example.com/a/b?c=1' }).url.href).toBe('https://other.example.com/a/b?c=1');
  });

  it('repeats array query values and stringifies scalars', () => {
    const url = spec({ method: 'GET', url: 'http://h/search', query: { tag: ['a', 'b c', 3], limit: 10, exact: false } }).url;
    expect(url.search).toBe('?tag=a&tag=b+c&tag=3&limit=10&exact=false');
    expect(url.searchParams.getAll('tag')).toEqual(['a', 'b c', '3']);
  });

  it('encodes query characters that would break the URL', () => {
    const url = spec({ method: 'GET', url: 'http://h/s', query: { q: 'a&b=c#d' } }).url;
    expect(url.searchParams.get('q')).toBe('a&b=c#d');
    expect(url.hash).toBe('');
  });
});

describe('buildRequestSpec: headers', () => {
  it('merges target headers under operation headers, case-insensitively, with lower-case names', () => {
    const { headers } = spec({
      method: 'GET',
      url: '/x',
      target: 'v2',
      headers: { authorization: 'Bearer op', ACCEPT: 'application/json' },
    });
    expect(headers).toEqual({ authorization: 'Bearer op', 'x-client': 'sluice', accept: 'application/json' });
  });

  it('keeps target headers when the operation sets none', () => {
    expect(spec({ method: 'GET', url: '/x', target: 'v2' }).headers).toEqual({
      authorization: 'Bearer target',
      'x-client': 'sluice',
      accept: 'text/plain',
    });
  });
});

describe('buildRequestSpec: bodies', () => {
  it('encodes json with an application/json content type', () => {
    const built = spec({ method: 'POST', url: 'http://h/x', json: { a: [1, 'é'], b: null } });
    expect(built.body).toBe('{"a":[1,"é"],"b":null}');
    expect(built.headers['content-type']).toBe('application/json');
  });

  it('encodes a falsy json value rather than dropping it', () => {
    const built = spec({ method: 'POST', url: 'http://h/x', json: false });
    expect(built.body).toBe('false');
    expect(built.headers['content-type']).toBe('application/json');
  });

  it('encodes a form as urlencoded, repeating arrays', () => {
    const built = spec({ method: 'POST', url: 'http://h/x', form: { user: 'a b', ids: [1, 2], ok: true } });
    expect(built.body).toBe('user=a+b&ids=1&ids=2&ok=true');
    expect(built.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('sends a raw body as text/plain by default', () => {
    const built = spec({ method: 'PUT', url: 'http://h/x', body: 'hello' });
    expect(built.body).toBe('hello');
    expect(built.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it.each<[string, OperationInput]>([
    ['json', { method: 'POST', url: 'http://h/x', json: {}, headers: { 'Content-Type': 'application/vnd.api+json' } }],
    ['form', { method: 'POST', url: 'http://h/x', form: { a: 1 }, headers: { 'CONTENT-TYPE': 'application/vnd.api+json' } }],
    ['body', { method: 'POST', url: 'http://h/x', body: '<a/>', headers: { 'content-type': 'application/vnd.api+json' } }],
  ])('keeps an explicit content-type header for a %s body', (_kind, input) => {
    const built = spec(input);
    expect(built.headers['content-type']).toBe('application/vnd.api+json');
    expect(Object.keys(built.headers).filter((name) => name.toLowerCase() === 'content-type')).toHaveLength(1);
  });

  it('keeps a content type given by the target', () => {
    const config = parseSluiceConfig({ targets: { t: { baseUrl: 'http://h', headers: { 'Content-Type': 'application/xml' } } } });
    const result = parseOperation({ method: 'POST', url: '/x', target: 't', body: '<a/>' }, config);
    if (!result.ok) throw new Error('invalid operation in test');
    expect(buildRequestSpec(result.operation, config.targets.t, 'k').headers['content-type']).toBe('application/xml');
  });

  it('has no body and no content type without json, form or body', () => {
    const built = spec({ method: 'DELETE', url: 'http://h/x/1' });
    expect(built.body).toBeUndefined();
    expect(built.headers).not.toHaveProperty('content-type');
  });
});

describe('buildRequestSpec: Idempotency-Key', () => {
  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'post'])('sends the job key on %s', (method) => {
    const built = spec({ method, url: 'http://h/x' }, 'batch-1:row-7');
    expect(built.headers['idempotency-key']).toBe('batch-1:row-7');
    expect(built.method).toBe(method.toUpperCase());
  });

  it.each(['GET', 'HEAD', 'get'])('sends no key on %s', (method) => {
    expect(spec({ method, url: 'http://h/x' }).headers).not.toHaveProperty('idempotency-key');
  });

  it('keeps an Idempotency-Key header the operation gives', () => {
    const built = spec({ method: 'POST', url: 'http://h/x', headers: { 'Idempotency-Key': 'mine' } }, 'job-key');
    expect(built.headers).toMatchObject({ 'idempotency-key': 'mine' });
    expect(Object.keys(built.headers).filter((name) => name.toLowerCase() === 'idempotency-key')).toEqual(['idempotency-key']);
  });
});

describe('buildRequestSpec: timeouts', () => {
  it('passes the operation timeouts through', () => {
    expect(spec({ method: 'GET', url: 'http://h/x', timeoutMs: { connect: 1, headers: 2, total: 3 } }).timeouts).toEqual({
      connect: 1,
      headers: 2,
      total: 3,
    });
  });
});
