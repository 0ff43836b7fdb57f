import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { classifyResponse } from '../../src/http/classify.js';
import type { HttpResponseSummary } from '../../src/http/http-client.js';
import type { CappedBody } from '../../src/http/read-body.js';
import { buildRequestSpec } from '../../src/http/request-spec.js';
import { MAX_LISTED_ERRORS, SCHEMA_CACHE_SIZE, checkJson, jsonSchemaProblems } from '../../src/operation/json-schema.js';
import { parseOperation } from '../../src/operation/parse-operation.js';
import type { Operation } from '../../src/operation/schema.js';
import { responseReason } from '../../src/worker/decide-attempt.js';

const CONFIG = parseSluiceConfig({ allowedHosts: ['api.example.com'] });

const ORDERS = {
  type: 'object',
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id'],
        additionalProperties: false,
        properties: { id: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
      },
    },
  },
};

function parse(schema: unknown) {
  return parseOperation({ method: 'GET', url: 'https://api.example.com/orders', expect: { schema } }, CONFIG);
}

function operationWith(schema: unknown): Operation {
  const result = parse(schema);
  if (!result.ok) throw new Error(`expected a valid operation, got ${JSON.stringify(result.issues)}`);
  return result.operation;
}

describe('expect.schema at enqueue time', () => {
  it('accepts a draft-07 schema, with formats, and keeps it as given', () => {
    const schema = { $schema: 'http://json-schema.org/draft-07/schema#', ...ORDERS };
    expect(operationWith(schema).expect).toEqual({ schema });
  });

  it.each([
    [{ type: 'strin' }, 'expect.schema.type', /must be equal to one of the allowed values .* or must be array/],
    [{ properties: { items: { items: [{ minLength: -1 }] } } }, 'expect.schema.properties.items.items[0].minLength', /must be >= 0/],
    [{ requird: ['id'] }, 'expect.schema', /unknown keyword: "requird"/],
    [{ type: 'string', format: 'emial' }, 'expect.schema', /unknown format "emial"/],
    [{ $ref: '#/definitions/missing' }, 'expect.schema', /can't resolve reference #\/definitions\/missing/],
    [{ $schema: 'https://json-schema.org/draft/2020-12/schema' }, 'expect.schema.$schema', /draft-07/],
    [{ $async: true, type: 'object' }, 'expect.schema.$async', /not supported/],
    [['not', 'an', 'object'], 'expect.schema', /expected a JSON Schema object/],
  ])('refuses %j with an issue at its path', (schema, path, message) => {
    const result = parse(schema);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues).toHaveLength(1);
    expect(result.issues[0]!.path).toBe(path);
    expect(result.issues[0]!.message).toMatch(message);
  });

  it('keeps strict objects: an unknown field in expect is still an error', () => {
    const result = parseOperation({ method: 'GET', url: 'https://api.example.com/x', expect: { shcema: {} } }, CONFIG);
    expect(result).toEqual({ ok: false, issues: [{ path: 'expect.shcema', message: 'unknown field' }] });
  });

  it('asks the HTTP client for the whole body only when there is a schema', () => {
    expect(buildRequestSpec(operationWith(ORDERS), undefined, 'k').keepBodyText).toBe(true);
    const plain = parseOperation({ method: 'GET', url: 'https://api.example.com/orders' }, CONFIG);
    if (!plain.ok) throw new Error('invalid');
    expect(buildRequestSpec(plain.operation, undefined, 'k').keepBodyText).toBeUndefined();
  });

  it('compiles each distinct schema once and keeps working past the cache size', () => {
    for (let i = 0; i < SCHEMA_CACHE_SIZE * 5; i++) {
      expect(jsonSchemaProblems({ type: 'object', properties: { [`f${i}`]: { type: 'integer' } } })).toEqual([]);
    }
    // Two schemas with the same $id are compiled independently, including the meta-schema's own.
    expect(jsonSchemaProblems({ $id: 'http://json-schema.org/draft-07/schema', type: 'string' })).toEqual([]);
    expect(jsonSchemaProblems({ $id: 'https://x.example/s', type: 'string' })).toEqual([]);
    expect(jsonSchemaProblems({ $id: 'https://x.example/s', type: 'number' })).toEqual([]);
    expect(checkJson({ $id: 'https://x.example/s', type: 'number' }, '"a"')?.errors).toEqual(['(root): must be number']);
    expect(jsonSchemaProblems({ type: 'strin' })).not.toEqual([]);
  });
});

describe('checkJson', () => {
  it('passes a matching body', () => {
    expect(checkJson(ORDERS, JSON.stringify({ items: [{ id: 'a', at: '2024-05-01T10:00:00Z' }, { id: 'b' }] }))).toBeUndefined();
  });

  it('lists every error with its JSON pointer', () => {
    const mismatch = checkJson(ORDERS, JSON.stringify({ items: [{ id: 'a' }, { id: 7 }, { id: 'c', at: 'yesterday' }, { idd: 'd' }] }));
    expect(mismatch?.errors).toEqual([
      '/items/1/id: must be string',
      '/items/2/at: must match format "date-time"',
      "/items/3: must have required property 'id'",
      '/items/3: must NOT have additional properties ("idd")',
    ]);
    expect(mismatch?.total).toBe(4);
    expect(mismatch?.message.split('\n')[0]).toBe('response body does not match expect.schema (4 errors):');
  });

  it(`lists at most ${MAX_LISTED_ERRORS} errors and counts the rest`, () => {
    const mismatch = checkJson(ORDERS, JSON.stringify({ items: Array.from({ length: 35 }, (_, i) => ({ id: i })) }));
    expect(mismatch?.total).toBe(35);
    expect(mismatch?.errors).toHaveLength(MAX_LISTED_ERRORS);
    expect(mismatch?.errors.at(-1)).toBe(`/items/${MAX_LISTED_ERRORS - 1}/id: must be string`);
    expect(mismatch?.message.split('\n').at(-1)).toBe(`… and ${35 - MAX_LISTED_ERRORS} more`);
  });

  it('names the root and the problem of a body that is not JSON', () => {
    expect(checkJson(ORDERS, '[]')?.errors).toEqual(['(root): must be object']);
    expect(checkJson(ORDERS, '<html>oops</html>')?.message).toMatch(/^response body is not JSON \(expect\.schema needs JSON\): /);
    expect(checkJson(ORDERS, '')?.message).toMatch(/^response body is not JSON/);
  });

  it('follows recursive references', () => {
    const tree = {
      $ref: '#/definitions/node',
      definitions: { node: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/definitions/node' } } } } },
    };
    expect(checkJson(tree, '{"kids":[{"kids":[]}]}')).toBeUndefined();
    expect(checkJson(tree, '{"kids":[{"kids":[1]}]}')?.errors).toEqual(['/kids/0/kids/0: must be object']);
  });
});

describe('classifyResponse', () => {
  const response = (status: number, body: Partial<CappedBody>): HttpResponseSummary => ({
    status,
    headers: {},
    body: { value: undefined, bytes: 0, truncated: false, ...body },
    durationMs: 1,
    retryAfterMs: undefined,
    rateLimit: undefined,
  });
  const expectOrders = { schema: ORDERS };

  it('succeeds when an accepted body matches', () => {
    expect(classifyResponse(response(200, { text: '{"items":[]}' }), expectOrders)).toEqual({ kind: 'success' });
  });

  it('fails for good, with the listed errors, when it does not', () => {
    const verdict = classifyResponse(response(200, { text: '{"items":[{"id":1}]}' }), expectOrders);
    expect(verdict).toEqual({
      kind: 'permanent',
      code: 'SCHEMA_MISMATCH',
      message: 'response body does not match expect.schema (1 error):\n/items/0/id: must be string',
    });
    expect(responseReason('SCHEMA_MISMATCH')).toBe('schema-mismatch');
  });

  it('fails for good on a body problem of an accepted status', () => {
    const tooLarge = { code: 'RESPONSE_TOO_LARGE', message: 'response body is larger than 1024 bytes' } as const;
    expect(classifyResponse(response(200, { problem: tooLarge }), undefined)).toEqual({ kind: 'permanent', ...tooLarge });
    expect(classifyResponse(response(201, { problem: { code: 'BAD_ENCODING', message: 'x' } }), expectOrders)).toMatchObject({
      code: 'BAD_ENCODING',
    });
    expect(responseReason('RESPONSE_TOO_LARGE')).toBe('bad-response');
    expect(responseReason('BAD_ENCODING')).toBe('bad-response');
    expect(responseReason('HTTP_404')).toBe('permanent-status');
  });

  it('lets the status decide for statuses that are not accepted, whatever the body', () => {
    const corrupt = { problem: { code: 'BAD_ENCODING', message: 'x' } } as const;
    expect(classifyResponse({ ...response(503, corrupt), retryAfterMs: 1_000 }, expectOrders)).toEqual({
      kind: 'retry',
      retryAfterMs: 1_000,
      code: 'HTTP_503',
    });
    expect(classifyResponse(response(404, { text: 'nope' }), expectOrders)).toEqual({ kind: 'permanent', code: 'HTTP_404' });
  });

  it('checks the body of an accepted non-2xx status too', () => {
    expect(classifyResponse(response(404, { text: '{}' }), { status: [404], schema: ORDERS })).toMatchObject({
      kind: 'permanent',
      code: 'SCHEMA_MISMATCH',
    });
  });
});
