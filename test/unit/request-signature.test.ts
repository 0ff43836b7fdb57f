import { createHash, createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  canonicalString,
  formatTimestamp,
  hmacHeaders,
  standardWebhooksHeaders,
  standardWebhooksKey,
  templateProblem,
  type HmacSettings,
  type SignedRequest,
} from '../../src/auth/request-signature.js';

const request: SignedRequest = {
  method: 'post',
  url: new URL('https://api.example.test/v2/orders%20x?dry=true&tag=a&tag=b'),
  body: '{"total":12.5,"note":"{body} é"}',
  idempotencyKey: 'order-7',
  id: 'job-42',
};
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('canonicalString', () => {
  const cases: [template: string, expected: string][] = [
    ['{timestamp}', '1767323045'],
    ['{method}', 'POST'],
    ['{path}', '/v2/orders%20x'],
    ['{pathWithQuery}', '/v2/orders%20x?dry=true&tag=a&tag=b'],
    ['{body}', request.body!],
    ['{bodySha256}', sha256(request.body!)],
    ['{idempotencyKey}/{id}', 'order-7/job-42'],
    ['{timestamp}.{method}.{path}.{bodySha256}', `1767323045.POST./v2/orders%20x.${sha256(request.body!)}`],
    ['literal text only', 'literal text only'],
  ];
  for (const [template, expected] of cases) {
    it(`${template} → ${expected.slice(0, 40)}`, () => {
      expect(canonicalString(template, request, '1767323045')).toBe(expected);
    });
  }

  it('no body: {body} is empty and {bodySha256} the digest of nothing; no query: {pathWithQuery} is the path', () => {
    const get = { ...request, method: 'GET', url: new URL('https://api.example.test/things'), body: undefined };
    expect(canonicalString('{pathWithQuery}|{body}|{bodySha256}', get, 't')).toBe(`/things||${sha256('')}`);
  });
});

describe('formatTimestamp', () => {
  const cases: [Parameters<typeof formatTimestamp>[1], string][] = [
    ['unixSeconds', '1767323045'],
    ['unixMilliseconds', '1767323045678'],
    ['iso', '2026-01-02T03:04:05.678Z'],
  ];
  for (const [format, expected] of cases) it(`${format} → ${expected}`, () => expect(formatTimestamp(NOW, format)).toBe(expected));
});

describe('templateProblem', () => {
  const cases: [template: string, problem: string | undefined][] = [
    ['{timestamp}.{method}.{pathWithQuery}.{bodySha256}.{body}.{path}.{idempotencyKey}.{id}', undefined],
    ['no placeholders', undefined],
    [
      '{timestamp}.{url}.{Body}.{url}',
      'unknown placeholder {url}, {Body}; known: {timestamp}, {method}, {path}, {pathWithQuery}, {body}, {bodySha256}, {idempotencyKey}, {id}',
    ],
    ['{}', expect.stringContaining('unknown placeholder {}') as unknown as string],
    ['{timestamp', 'a { or } that is not part of a {placeholder}'],
    ['timestamp}.{method}', 'a { or } that is not part of a {placeholder}'],
  ];
  for (const [template, problem] of cases) it(JSON.stringify(template), () => expect(templateProblem(template)).toEqual(problem));
});

describe('hmacHeaders', () => {
  const settings: HmacSettings = {
    algorithm: 'sha256',
    template: '{timestamp}.{method}.{pathWithQuery}.{bodySha256}',
    header: 'x-signature',
    timestampHeader: 'x-timestamp',
    timestampFormat: 'unixSeconds',
    encoding: 'hex',
    prefix: 'sha256=',
  };

  it('signs the canonical string with the secret; the timestamp goes in its header', () => {
    const canonical = `1767323045.POST./v2/orders%20x?dry=true&tag=a&tag=b.${sha256(request.body!)}`;
    expect(hmacHeaders(settings, 's3cret', request, NOW)).toEqual({
      'x-signature': `sha256=${createHmac('sha256', 's3cret').update(canonical).digest('hex')}`,
      'x-timestamp': '1767323045',
    });
  });

  it('sha512 in base64, without a timestamp header', () => {
    const headers = hmacHeaders(
      { ...settings, algorithm: 'sha512', encoding: 'base64', prefix: '', template: '{id}:{body}', timestampHeader: undefined },
      's3cret',
      request,
      NOW,
    );
    expect(headers).toEqual({ 'x-signature': createHmac('sha512', 's3cret').update(`job-42:${request.body!}`).digest('base64') });
  });
});

describe('Standard Webhooks', () => {
  const secret = `whsec_${Buffer.from('a key of twenty-four+ bytes!').toString('base64')}`;

  it('the reference library verifies what is signed, and refuses a changed body', () => {
    const headers = standardWebhooksHeaders(standardWebhooksKey(secret)!, request, Date.now());
    expect(headers['webhook-id']).toBe('order-7');
    expect(new Webhook(secret).verify(request.body!, headers)).toEqual(JSON.parse(request.body!));
    expect(() => new Webhook(secret).verify(`${request.body!} `, headers)).toThrow('No matching signature found');
  });

  it('matches the reference library byte for byte', () => {
    const headers = standardWebhooksHeaders(standardWebhooksKey(secret)!, request, NOW);
    expect(headers).toEqual({
      'webhook-id': 'order-7',
      'webhook-timestamp': '1767323045',
      'webhook-signature': new Webhook(secret).sign('order-7', new Date(NOW), request.body!),
    });
  });

  const keys: [string, boolean][] = [
    [secret, true],
    [secret.slice('whsec_'.length), true],
    ['whsec_', false],
    ['whsec_not base64!', false],
    ['whsec_abc', false],
    ['', false],
  ];
  for (const [value, valid] of keys) {
    it(`standardWebhooksKey(${JSON.stringify(value.slice(0, 12))}…) is ${valid ? 'a key' : 'refused'}`, () => {
      expect(standardWebhooksKey(value) !== undefined).toBe(valid);
    });
  }
});
