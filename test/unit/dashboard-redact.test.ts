import { describe, expect, it } from 'vitest';
import {
  REDACTED,
  isCredentialName,
  redactJobData,
  redactRequestTarget,
  redactText,
  redactUrlText,
} from '../../src/server/dashboard/redact.js';

describe('redactJobData: what bull-board shows of a job', () => {
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
