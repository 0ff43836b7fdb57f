import { describe, expect, it } from 'vitest';
import type { Issue } from '../../src/errors.js';
import { EMPTY_CONFIG, parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { limitKeyOf, parseOperation } from '../../src/operation/parse-operation.js';
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS, type Operation } from '../../src/operation/schema.js';

const CONFIG: SluiceConfig = parseSluiceConfig({
  targets: {
    billing: { baseUrl: 'https://billing.example.com/v2' },
    crm: { baseUrl: 'http://crm.example.com' },
  },
  allowedHosts: ['h', 'api.example.com', 'other.example.com'],
});

function valid(input: unknown, config: SluiceConfig = CONFIG): Operation {
  const result = parseOperation(input, config);
  if (!result.ok) throw new Error(`expected a valid operation, got issues: ${JSON.stringify(result.issues)}`);
  return result.operation;
}

function issues(input: unknown, config: SluiceConfig = CONFIG): Issue[] {
  const result = parseOperation(input, config);
  if (result.ok) throw new Error(`expected issues, got a valid operation: ${JSON.stringify(result.operation)}`);
  return result.issues;
}

describe('parseOperation: valid operations', () => {
  it('accepts a minimal GET with an absolute URL and fills every default', () => {
    const op = valid({ method: 'GET', url: 'https://api.example.com/items/1' });
    expect(op).toEqual({
      method: 'GET',
      url: 'https://api.example.com/items/1',
      timeoutMs: DEFAULT_TIMEOUTS,
      retry: DEFAULT_RETRY,
    });
  });

  it('fills missing fields of a partly given timeoutMs and retry', () => {
    const op = valid({ method: 'GET', url: 'http://h/x', timeoutMs: { total: 5_000 }, retry: { attempts: 2 } });
    expect(op.timeoutMs).toEqual({ connect: DEFAULT_TIMEOUTS.connect, headers: DEFAULT_TIMEOUTS.headers, total: 5_000 });
    expect(op.retry).toEqual({ ...DEFAULT_RETRY, attempts: 2 });
  });

  it('does not share default objects between operations', () => {
    const a = valid({ method: 'GET', url: 'http://h/a' });
    const b = valid({ method: 'GET', url: 'http://h/b' });
    a.retry.attempts = 1;
    a.timeoutMs.total = 1;
    expect(b.retry.attempts).toBe(DEFAULT_RETRY.attempts);
    expect(b.timeoutMs.total).toBe(DEFAULT_TIMEOUTS.total);
  });

  it('upper-cases the method', () => {
    expect(valid({ method: 'post', url: 'http://h/x' }).method).toBe('POST');
    expect(valid({ method: 'Patch', url: 'http://h/x' }).method).toBe('PATCH');
  });

  it('accepts a POST with a JSON body', () => {
    const op = valid({ method: 'POST', url: 'https://api.example.com/orders', json: { sku: 'a-1', qty: 2, tags: [null] } });
    expect(op.json).toEqual({ sku: 'a-1', qty: 2, tags: [null] });
  });

  it('accepts JSON bodies that are falsy values', () => {
    expect(valid({ method: 'POST', url: 'http://h/x', json: null }).json).toBeNull();
    expect(valid({ method: 'POST', url: 'http://h/x', json: 0 }).json).toBe(0);
    expect(valid({ method: 'POST', url: 'http://h/x', json: false }).json).toBe(false);
  });

  it('accepts a form with scalar and array values', () => {
    const op = valid({ method: 'POST', url: 'http://h/login', form: { user: 'ann', ids: [1, 2, 'three'], remember: true } });
    expect(op.form).toEqual({ user: 'ann', ids: [1, 2, 'three'], remember: true });
  });

  it('accepts a raw body with a content-type header', () => {
    const op = valid({ method: 'PUT', url: 'http://h/doc', body: '<a/>', headers: { 'Content-Type': 'application/xml' } });
    expect(op.body).toBe('<a/>');
    expect(op.headers).toEqual({ 'Content-Type': 'application/xml' });
  });

  it('accepts a path URL when the target is configured', () => {
    const op = valid({ method: 'GET', url: '/invoices', target: 'billing' });
    expect(op).toMatchObject({ url: '/invoices', target: 'billing' });
  });

  it('accepts every field at once', () => {
    const input = {
      method: 'patch',
      url: '/customers/7',
      target: 'crm',
      query: { expand: ['orders', 'notes'], limit: 10, dryRun: false },
      headers: { 'X-Trace': 'abc', Accept: 'application/json' },
      json: { name: 'Ann' },
      timeoutMs: { connect: 1_000, headers: 2_000, total: 3_000 },
      idempotencyKey: 'customer-7-rename',
      limitKey: 'crm-writes',
      retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50, maxDurationMs: 60_000 },
      expect: { status: [200, 204] },
      meta: { row: 12, source: 'import.csv' },
    };
    expect(valid(input)).toEqual({ ...input, method: 'PATCH' });
  });
});

describe('parseOperation: invalid operations', () => {
  it('names an unknown top-level field', () => {
    expect(issues({ method: 'POST', url: 'http://h/x', jsn: { a: 1 } })).toEqual([{ path: 'jsn', message: 'unknown field' }]);
  });

  it('names an unknown nested field with its full path', () => {
    expect(issues({ method: 'GET', url: 'http://h/x', retry: { atempts: 3 } })).toEqual([
      { path: 'retry.atempts', message: 'unknown field' },
    ]);
  });

  // Property-based counterexamples: a key holding a dot or a bracket, or an empty one, made a path that reads another way.
  it('quotes a key that is not a plain name, so the path reads one way', () => {
    expect(issues({ 'a.b': '', method: 'GET', url: 'http://h/x' })).toEqual([{ path: '["a.b"]', message: 'unknown field' }]);
    expect(issues({ method: 'GET', url: 'http://h/x', retry: { '] ': null } })).toEqual([
      { path: 'retry["] "]', message: 'unknown field' },
    ]);
    expect(issues({ method: 'GET', url: 'http://h/x', query: { '': {} } })).toEqual([{ path: 'query[""]', message: expect.any(String) }]);
  });

  // Property-based counterexample: zod leaves a "__proto__" key out of a record, so the header was silently not sent.
  it('refuses a "__proto__" name in query, form, headers, expect.schema and paginate.forEach rather than losing it', () => {
    const message = expect.stringMatching(/"__proto__" is not supported/);
    expect(issues(JSON.parse('{"method":"GET","url":"http://h/x","headers":{"__proto__":""}}'))).toEqual([
      { path: 'headers.__proto__', message },
    ]);
    expect(issues(JSON.parse('{"method":"GET","url":"http://h/x","query":{"__proto__":"1","a":"2"}}'))).toEqual([
      { path: 'query.__proto__', message },
    ]);
    expect(issues(JSON.parse('{"method":"POST","url":"http://h/x","form":{"__proto__":["a"]}}'))).toEqual([
      { path: 'form.__proto__', message },
    ]);
    expect(issues(JSON.parse('{"method":"GET","url":"http://h/x","expect":{"schema":{"__proto__":{}}}}'))).toEqual([
      { path: 'expect.schema.__proto__', message },
    ]);
    expect(issues(JSON.parse('{"method":"GET","url":"http://h/x","paginate":{"style":"link","forEach":{"__proto__":{}}}}'))).toEqual([
      { path: 'paginate.forEach.__proto__', message },
    ]);
    // json and meta are kept whole, "__proto__" and all.
    expect(
      JSON.stringify(valid(JSON.parse('{"method":"POST","url":"http://h/x","json":{"__proto__":1},"meta":{"__proto__":2}}'))),
    ).toContain('"json":{"__proto__":1}');
  });

  it('names each of several unknown fields', () => {
    const found = issues({ method: 'GET', url: 'http://h/x', jsn: 1, timeoutMs: { totl: 5 }, hdrs: {} });
    expect(found).toEqual(
      expect.arrayContaining([
        { path: 'jsn', message: 'unknown field' },
        { path: 'hdrs', message: 'unknown field' },
        { path: 'timeoutMs.totl', message: 'unknown field' },
      ]),
    );
    expect(found).toHaveLength(3);
  });

  it('rejects two bodies, naming both fields', () => {
    const found = issues({ method: 'POST', url: 'http://h/x', json: {}, form: { a: '1' } });
    expect(found).toEqual([{ path: 'form', message: expect.stringMatching(/at most one body.*json/) }]);
  });

  it('rejects a relative URL without a target', () => {
    const found = issues({ method: 'GET', url: '/orders' });
    expect(found).toEqual([{ path: 'url', message: expect.stringMatching(/path needs a target.*baseUrl/) }]);
  });

  it('rejects an unknown target, listing the configured ones', () => {
    const found = issues({ method: 'GET', url: '/orders', target: 'biling' });
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toBe('target');
    expect(found[0]?.message).toContain('unknown target "biling"');
    expect(found[0]?.message).toContain('configured targets: billing, crm');
  });

  it('says that no targets are configured when the config has none', () => {
    const found = issues({ method: 'GET', url: '/orders', target: 'billing' }, EMPTY_CONFIG);
    expect(found).toEqual([{ path: 'target', message: expect.stringMatching(/unknown target "billing"; no targets are configured/) }]);
  });

  it('rejects a target named after an Object.prototype member', () => {
    expect(issues({ method: 'GET', url: '/x', target: 'toString' })[0]?.path).toBe('target');
  });

  it.each(['ftp://files.example.com/a.txt', 'example.com/orders', 'http//h/x', 'mailto:a@b.c', 'http://'])(
    'rejects the non-http(s) URL %j',
    (url) => {
      const found = issues({ method: 'GET', url });
      expect(found).toEqual([
        { path: 'url', message: `expected an absolute http(s) URL or a path starting with /, got ${JSON.stringify(url)}` },
      ]);
    },
  );

  it('rejects an empty URL with one issue', () => {
    expect(issues({ method: 'GET', url: '' })).toEqual([
      { path: 'url', message: 'expected an absolute http(s) URL or a path starting with /, got ""' },
    ]);
  });

  it.each(['GE T', 'GET\r\n', '', 'PO/ST'])('rejects the method %j', (method) => {
    const found = issues({ method, url: 'http://h/x' });
    expect(found).toEqual([{ path: 'method', message: 'expected an HTTP method such as GET or POST' }]);
  });

  it('rejects a missing method and URL, naming both', () => {
    const found = issues({});
    expect(found.map((issue) => issue.path).sort()).toEqual(['method', 'url']);
  });

  it.each(['a\r\nX-Injected: 1', 'a\nb', 'a\rb'])('rejects a header value with CR or LF (%j)', (value) => {
    const found = issues({ method: 'GET', url: 'http://h/x', headers: { 'X-Trace': value } });
    expect(found).toEqual([{ path: 'headers.X-Trace', message: 'header values may not contain CR or LF' }]);
  });

  it('rejects a header name that is not a token', () => {
    const found = issues({ method: 'GET', url: 'http://h/x', headers: { 'Bad Name': 'v' } });
    expect(found).toEqual([{ path: 'headers.Bad Name', message: 'header names may only hold token characters' }]);
  });

  it('rejects an idempotencyKey with CR or LF', () => {
    expect(issues({ method: 'POST', url: 'http://h/x', idempotencyKey: 'k\n1' })).toEqual([
      { path: 'idempotencyKey', message: 'may not contain CR or LF' },
    ]);
  });

  // What the HTTP client refuses to send is refused at enqueue, not dead-lettered on the first attempt.
  it.each(['a\u0000b', 'bell\u0007', '日本', 'emoji 🙂', 'del\u007f'])('rejects a header value the client cannot send (%j)', (value) => {
    const found = issues({ method: 'GET', url: 'http://h/x', headers: { 'X-Name': value } });
    expect(found).toEqual([{ path: 'headers.X-Name', message: expect.stringMatching(/^header values may hold only visible characters/) }]);
  });

  it.each(['Zoë Müller', 'tab\there', ' padded ', ''])('accepts a header value the client sends (%j)', (value) => {
    expect(parseOperation({ method: 'GET', url: 'http://h/x', headers: { 'X-Name': value } }, CONFIG).ok).toBe(true);
  });

  it('rejects an idempotencyKey a request would carry as a header it cannot send, not one of a GET', () => {
    expect(issues({ method: 'POST', url: 'http://h/x', idempotencyKey: 'ключ-日本' })).toEqual([
      { path: 'idempotencyKey', message: expect.stringMatching(/^sent as the Idempotency-Key header of a POST, so it may hold only/) },
    ]);
    expect(issues({ method: 'put', url: 'http://h/x', idempotencyKey: 'k\u0000' })).toHaveLength(1);
    // A GET (or HEAD) sends no Idempotency-Key: its key only dedups.
    expect(parseOperation({ method: 'GET', url: 'http://h/x', idempotencyKey: 'ключ-日本' }, CONFIG).ok).toBe(true);
    expect(parseOperation({ method: 'POST', url: 'http://h/x', idempotencyKey: 'Zoë-1' }, CONFIG).ok).toBe(true);
  });

  it.each(['CONNECT', 'connect'])('rejects %s, which opens a tunnel', (method) => {
    expect(issues({ method, url: 'http://h/x' })).toEqual([
      { path: 'method', message: 'CONNECT opens a tunnel, not a request sluice can send' },
    ]);
  });

  it('rejects retry.maxDelayMs below retry.baseDelayMs', () => {
    const found = issues({ method: 'GET', url: 'http://h/x', retry: { baseDelayMs: 500, maxDelayMs: 100 } });
    expect(found).toEqual([{ path: 'retry.maxDelayMs', message: 'must be at least retry.baseDelayMs' }]);
  });

  it('rejects a default maxDelayMs below a given baseDelayMs', () => {
    const found = issues({ method: 'GET', url: 'http://h/x', retry: { baseDelayMs: DEFAULT_RETRY.maxDelayMs + 1 } });
    expect(found).toEqual([{ path: 'retry.maxDelayMs', message: 'must be at least retry.baseDelayMs' }]);
  });

  it('rejects a zero total timeout', () => {
    const found = issues({ method: 'GET', url: 'http://h/x', timeoutMs: { total: 0 } });
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toBe('timeoutMs.total');
    expect(found[0]?.message).toMatch(/>\s*0|positive|too small/i);
  });

  it('rejects a status outside 100..599 in expect.status', () => {
    const found = issues({ method: 'GET', url: 'http://h/x', expect: { status: [200, 999] } });
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toBe('expect.status[1]');
    expect(found[0]?.message).toMatch(/599/);
  });

  it('rejects an empty expect.status', () => {
    expect(issues({ method: 'GET', url: 'http://h/x', expect: { status: [] } })).toEqual([
      { path: 'expect.status', message: 'list at least one status' },
    ]);
  });

  it('says what a query or form value may be', () => {
    const message = 'expected a string, number, boolean or an array of them';
    expect(issues({ method: 'GET', url: 'http://h/x', query: { ids: [1, { nested: true }] } })).toEqual([{ path: 'query.ids', message }]);
    expect(issues({ method: 'POST', url: 'http://h/x', form: { a: null } })).toEqual([{ path: 'form.a', message }]);
  });

  it('reports several problems at once', () => {
    const found = issues({ method: 'GET', url: 'http://h/x', timeoutMs: { total: 0 }, expect: { status: [999] }, jsn: 1 });
    expect(found.map((issue) => issue.path).sort()).toEqual(['expect.status[0]', 'jsn', 'timeoutMs.total']);
  });

  it('names an unknown target with the schema problems, not only once they are fixed', () => {
    expect(issues({ method: 'GET', url: '/ok', target: 'nope', x: 1 })).toEqual([
      { path: 'x', message: 'unknown field' },
      { path: 'target', message: 'unknown target "nope"; configured targets: billing, crm' },
    ]);
  });

  it('says a field left out is required', () => {
    expect(issues({ method: 'GET' })).toEqual([{ path: 'url', message: 'required (expected string)' }]);
  });

  it.each([
    [[{ method: 'GET', url: 'http://h/x' }], 'expected a JSON object, got an array'],
    ['GET http://h/x', 'expected a JSON object, got string'],
    [null, 'expected a JSON object, got null'],
    [undefined, 'expected a JSON object, got undefined'],
    [42, 'expected a JSON object, got number'],
  ])('rejects the non-object input %j', (input, message) => {
    expect(issues(input)).toEqual([{ path: '', message }]);
  });
});

describe('limitKeyOf', () => {
  it('prefers an explicit limitKey', () => {
    expect(limitKeyOf(valid({ method: 'GET', url: '/x', target: 'billing', limitKey: 'billing-reads' }))).toBe('billing-reads');
    expect(limitKeyOf(valid({ method: 'GET', url: 'http://h/x', limitKey: 'shared' }))).toBe('shared');
  });

  it('falls back to the target name', () => {
    expect(limitKeyOf(valid({ method: 'GET', url: '/x', target: 'crm' }))).toBe('crm');
    // A target with an absolute URL still counts against the target.
    expect(limitKeyOf(valid({ method: 'GET', url: 'http://other.example.com/x', target: 'crm' }))).toBe('crm');
  });

  it('falls back to the URL host, keeping a non-default port', () => {
    expect(limitKeyOf(valid({ method: 'GET', url: 'https://api.example.com/items' }))).toBe('api.example.com');
    expect(limitKeyOf(valid({ method: 'GET', url: 'http://api.example.com:8080/items' }))).toBe('api.example.com:8080');
    expect(limitKeyOf(valid({ method: 'GET', url: 'HTTPS://API.Example.com:443/items' }))).toBe('api.example.com');
  });

  it('reads a host with the trailing dot of a fully qualified name as the same host (the same limits)', () => {
    expect(limitKeyOf(valid({ method: 'GET', url: 'https://api.example.com./items' }))).toBe('api.example.com');
    expect(limitKeyOf(valid({ method: 'GET', url: 'http://api.example.com.:8080/items' }))).toBe('api.example.com:8080');
  });
});
