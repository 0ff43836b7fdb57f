import { describe, expect, it } from 'vitest';
import {
  REDACTED,
  isCredentialName,
  redactJobData,
  redactRequestTarget,
  redactText,
  redactUrlText,
} from '../../src/observability/redact.js';

describe('redaction: what readers are shown of an operation or job', () => {
  it('withholds headers, query parameters and body fields whose names look like credentials, at any depth', () => {
    const data = {
      op: {
        method: 'POST',
        url: 'https://api.example.com/v1/items?access_token=abc&page=2',
        headers: {
          Authorization: 'Bearer abc',
          cookie: 'sid=1',
          'X-Api-Key': 'k',
          'x-goog-api-key': 'g',
          'Proxy-Authorization': 'Basic x',
          accept: 'application/json',
        },
        query: { api_key: 'q', client_secret: 's', limit: 10, tags: ['a', 'b'] },
        json: { user: { name: 'ann', password: 'p', passwd: 'p2', session_id: 'z' }, items: [{ apiKey: 'x', id: 1 }] },
      },
      opId: 'u-1',
      idempotencyKey: 'order-42',
      batchId: 'b-1',
    };
    expect(redactJobData(data)).toEqual({
      op: {
        method: 'POST',
        url: `https://api.example.com/v1/items?access_token=${REDACTED}&page=2`,
        headers: {
          Authorization: REDACTED,
          cookie: REDACTED,
          'X-Api-Key': REDACTED,
          'x-goog-api-key': REDACTED,
          'Proxy-Authorization': REDACTED,
          accept: 'application/json',
        },
        query: { api_key: REDACTED, client_secret: REDACTED, limit: 10, tags: ['a', 'b'] },
        json: { user: { name: 'ann', password: REDACTED, passwd: REDACTED, session_id: REDACTED }, items: [{ apiKey: REDACTED, id: 1 }] },
      },
      opId: 'u-1',
      idempotencyKey: 'order-42',
      batchId: 'b-1',
    });
    // The original is not touched.
    expect(data.op.headers.Authorization).toBe('Bearer abc');
  });

  it('withholds a password in a URL, keeps other URLs and text as they are', () => {
    expect(redactUrlText('https://user:hunter2@example.com/x')).toBe('https://user:redacted@example.com/x');
    expect(redactUrlText('https://example.com/x?a=1&b=2')).toBe('https://example.com/x?a=1&b=2');
    expect(redactUrlText('not a url ?token=x')).toBe('not a url ?token=x');
    expect(redactJobData({ result: { headers: { 'set-cookie': 'sid=2', 'content-type': 'text/plain' } } })).toEqual({
      result: { headers: { 'set-cookie': REDACTED, 'content-type': 'text/plain' } },
    });
  });

  it('keeps null, empty and non-object values, and survives deep nesting', () => {
    expect(redactJobData(null)).toBeNull();
    expect(redactJobData(42)).toBe(42);
    expect(redactJobData({ token: null, secret: '' })).toEqual({ token: null, secret: '' });
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 100; i++) deep = { next: deep };
    expect(() => JSON.stringify(redactJobData(deep))).not.toThrow();
  });

  it("knows the usual credential names and leaves sluice's own fields alone", () => {
    for (const name of [
      'authorization',
      'Cookie',
      'x-api-key',
      'api-key',
      'apikey',
      'X-Auth-Token',
      'refresh_token',
      'client_secret',
      'password',
      'private_key',
      'passphrase',
      'key_passphrase',
      'signature',
      'sig',
      'key',
    ]) {
      expect(isCredentialName(name), name).toBe(true);
    }
    for (const name of ['idempotencyKey', 'limitKey', 'batchId', 'opId', 'accept', 'content-type', 'page', 'url', 'method']) {
      expect(isCredentialName(name), name).toBe(false);
    }
  });

  it('withholds credentials in a path with a query, a form body, JSON held in a string and multipart parts', () => {
    const op = {
      url: '/v1/items?api_key=k1&page=2#top',
      body: 'grant_type=password&password=p1&user=ann',
      multipart: [
        { name: 'client_secret', value: 's1' },
        { name: 'comment', value: 'hello' },
        { name: 'token', file: 'token.txt' },
      ],
      excerpt: '{"error":"expired","refresh_token":"r1"}',
    };
    expect(redactJobData(op)).toEqual({
      url: `/v1/items?api_key=${REDACTED}&page=2#top`,
      body: `grant_type=password&password=${REDACTED}&user=ann`,
      multipart: [
        { name: 'client_secret', value: REDACTED },
        { name: 'comment', value: 'hello' },
        { name: 'token', file: 'token.txt' },
      ],
      excerpt: `{"error":"expired","refresh_token":"${REDACTED}"}`,
    });
    // JSON without a credential keeps its own spacing.
    expect(redactJobData({ body: '{ "a": 1 }' })).toEqual({ body: '{ "a": 1 }' });
  });

  it('withholds header values that carry an auth scheme, whatever the header is called', () => {
    expect(
      redactJobData({ headers: { 'X-Forwarded-Auth': 'Bearer abc', 'X-Plan': 'Basic', 'X-Note': 'Basic plan', accept: 'text/csv' } }),
    ).toEqual({ headers: { 'X-Forwarded-Auth': REDACTED, 'X-Plan': 'Basic', 'X-Note': REDACTED, accept: 'text/csv' } });
    // Elsewhere such text is data.
    expect(redactJobData({ json: { tier: 'Basic plan' } })).toEqual({ json: { tier: 'Basic plan' } });
  });

  it('finds URLs and name=value pairs inside messages, and leaves the rest of the text as written', () => {
    expect(redactText('expected an http(s) URL, got "ftp://u:pw@files.example.com/x?token=t1&n=2"')).toBe(
      `expected an http(s) URL, got "ftp://u:redacted@files.example.com/x?token=${REDACTED}&n=2"`,
    );
    // A withheld value runs to the end of its word; punctuation that ends the word stays.
    expect(redactText('the next page https://api.example.com/p?cursor=9&sig=abc: refused')).toBe(
      `the next page https://api.example.com/p?cursor=9&sig=${REDACTED}: refused`,
    );
    expect(redactText('retry with session=abc later')).toBe(`retry with session=${REDACTED} later`);
    for (const text of ['target answered HTTP 404', 'a=1 b=2', 'mail ann@example.com', 'https://example.com/x?a=%zz']) {
      expect(redactText(text)).toBe(text);
    }
  });
});

describe('redactRequestTarget: request URLs as the server logs them', () => {
  it.each([
    ['/v1/limits', '/v1/limits'],
    ['/healthz?token=abc', '/healthz?token=[redacted]'],
    ['/v1/x?access_token=abc&page=2&api_key=k&api_key=k2', '/v1/x?access_token=[redacted]&page=2&api_key=[redacted]&api_key=[redacted]'],
    ['/v1/x?ACCESS%5FTOKEN=abc&q=a%20b', '/v1/x?ACCESS%5FTOKEN=[redacted]&q=a%20b'],
    ['/v1/x?client+secret=abc', '/v1/x?client+secret=[redacted]'],
    ['/v1/x?%zz=1&token', '/v1/x?%zz=1&token'],
    ['/v1/x?sig=abc&idempotencyKey=k', '/v1/x?sig=[redacted]&idempotencyKey=k'],
  ])('%s → %s', (target, logged) => {
    expect(redactRequestTarget(target)).toBe(logged);
  });
});

describe('redactText: failure reasons, stack traces and job logs', () => {
  it.each([
    ['plain text stays as it is: 404 Not Found', 'plain text stays as it is: 404 Not Found'],
    ['POST https://api.example.com/v1/x?token=t1&page=2 failed.', 'POST https://api.example.com/v1/x?token=[redacted]&page=2 failed.'],
    ['(see https://user:pw@host.example/x)', '(see https://user:redacted@host.example/x)'],
    ['{"password":"p 1","user":"ann"}', '{"password":"[redacted]","user":"ann"}'],
    ['{\'api_key\': "k1"}', '{\'api_key\': "[redacted]"}'],
    ['Authorization: Bearer abc.def-123, next', 'Authorization: [redacted], next'],
    ['api_key=k2 and client_secret: s3; ok=1', 'api_key=[redacted] and client_secret: [redacted]; ok=1'],
    ['sent Bearer abcdefghijklmnop to it', 'sent Bearer [redacted] to it'],
    ['Basic dXNlcjpwYXNzd29yZA== refused', 'Basic [redacted] refused'],
    ['idempotencyKey=order-42 limitKey=crm', 'idempotencyKey=order-42 limitKey=crm'],
    ['at Session.run (file:///app/dist/x.js:10:5)', 'at Session.run (file:///app/dist/x.js:10:5)'],
  ])('%s', (text, shown) => {
    expect(redactText(text)).toBe(shown);
  });
});
