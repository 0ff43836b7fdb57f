import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { limitKeysOf, parseOperation } from '../../src/operation/parse-operation.js';

/**
 * `parseOperation` on arbitrary JSON: it never throws; it answers with a valid operation or with
 * issues that each name a path (one that leads into the input) and say what is wrong; a valid
 * operation survives the trip through JSON (Redis) and is read the same by the worker.
 */

const CONFIG: SluiceConfig = parseSluiceConfig({
  targets: { api: { baseUrl: 'https://api.example.com/v1' }, local: { baseUrl: 'http://127.0.0.1:9000', allowPrivateAddresses: true } },
  allowedHosts: ['h.example.com', '*.example.org'],
  files: { uploadDir: '/srv/uploads', downloadDir: '/srv/downloads' },
});

const FIELDS = [
  'method',
  'url',
  'target',
  'query',
  'headers',
  'json',
  'form',
  'body',
  'multipart',
  'bodyFile',
  'download',
  'timeoutMs',
  'idempotencyKey',
  'limitKey',
  'retry',
  'expect',
  'paginate',
  'meta',
];

/** Keys that trip up code that copies objects by assignment. */
const key = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 8 }) },
  fc.constantFrom('__proto__', 'constructor', 'toString', 'a.b', ''),
);
const json: fc.Arbitrary<unknown> = fc
  .letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.oneof(
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.string({ maxLength: 12 }),
      ),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(key, tie('value'), { maxKeys: 4 }),
    ),
  }))
  .value.map((value) => JSON.parse(JSON.stringify(value)) as unknown);

const method = fc.oneof(
  fc.constantFrom('GET', 'post', 'Put', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'PROPFIND'),
  fc.stringMatching(/^[A-Za-z]{1,8}$/),
);
const url = fc.oneof(
  fc.constantFrom('https://api.example.com/items', 'http://h.example.com/x?y=1', 'https://a.example.org:8443/p#f'),
  fc.stringMatching(/^\/[a-z0-9/_-]{0,20}$/),
  fc.webUrl({ validSchemes: ['https'] }).map((address) => {
    const parsed = new URL(address);
    parsed.host = 'api.example.com';
    return parsed.href;
  }),
);
const scalar = fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean());
/** Names that trip up code that copies objects by assignment come up now and then. */
const paramName = fc.oneof(
  { weight: 9, arbitrary: fc.string({ minLength: 1, maxLength: 8 }) },
  fc.constantFrom('__proto__', 'constructor'),
);
const params = fc.dictionary(paramName, fc.oneof(scalar, fc.array(scalar, { maxLength: 3 })), { maxKeys: 4 });
const headerName = fc.oneof(
  { weight: 9, arbitrary: fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/).filter((name) => name.toLowerCase() !== 'content-type') },
  fc.constant('__proto__'),
);
const headerValue = fc.string({ maxLength: 20 }).map((value) => value.replace(/[\r\n]/g, ' '));
const limitKeyName = fc.stringMatching(/^[a-z0-9:._-]{1,16}$/);
const relativePath = fc.stringMatching(/^[a-z0-9_-]{1,8}(\/[a-z0-9_-]{1,8}){0,2}\.[a-z]{1,4}$/);

/** Operations the schema must accept: every field in its valid range, at most one body. */
const validOperation = fc
  .record(
    {
      method,
      url,
      query: params,
      headers: fc.dictionary(headerName, headerValue, { maxKeys: 3 }),
      body: fc.oneof(
        fc.record({ json }),
        fc.record({ form: params }),
        fc.record({ body: fc.string({ maxLength: 20 }) }),
        fc.record({ bodyFile: relativePath }),
        fc.record({
          multipart: fc.array(
            fc.oneof(
              fc.record({ name: fc.stringMatching(/^[a-z]{1,6}$/), value: fc.string({ maxLength: 10 }) }),
              fc.record({ name: fc.stringMatching(/^[a-z]{1,6}$/), file: relativePath }),
            ),
            { minLength: 1, maxLength: 3 },
          ),
        }),
        fc.constant({}),
      ),
      timeoutMs: fc.record(
        {
          connect: fc.integer({ min: 1, max: 300_000 }),
          headers: fc.integer({ min: 1, max: 3_600_000 }),
          total: fc.integer({ min: 1, max: 3_600_000 }),
        },
        { requiredKeys: [] },
      ),
      idempotencyKey: fc.string({ minLength: 1, maxLength: 40 }).map((value) => value.replace(/[\r\n]/g, '_')),
      limitKey: fc.oneof(limitKeyName, fc.uniqueArray(limitKeyName, { minLength: 1, maxLength: 8 })),
      retry: fc
        .record(
          {
            attempts: fc.integer({ min: 1, max: 100 }),
            baseDelayMs: fc.integer({ min: 0, max: 60_000 }),
            maxDurationMs: fc.integer({ min: 1, max: 30 * 24 * 3_600_000 }),
          },
          { requiredKeys: [] },
        )
        .chain((retry) =>
          fc.integer({ min: retry.baseDelayMs ?? 1_000, max: 7 * 24 * 3_600_000 }).map((maxDelayMs) => ({ ...retry, maxDelayMs })),
        ),
      expect: fc.record({ status: fc.array(fc.integer({ min: 100, max: 599 }), { minLength: 1, maxLength: 4 }) }),
      meta: json,
    },
    { requiredKeys: ['method', 'url'] },
  )
  .map(({ body, url: address, ...rest }) => ({
    ...rest,
    ...(body ?? {}),
    url: address,
    // A path needs a target; an absolute URL may name one too.
    ...(address.startsWith('/') ? { target: 'api' } : {}),
  }));

/** The segments of an issue path (`a.b[0]["c.d"]`); undefined when it does not read one way. */
function segmentsOf(path: string): string[] | undefined {
  const segment = /\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|(?:^|\.)([^.[\]"\s](?:[^.[\]"]*[^.[\]"\s])?)/y;
  const out: string[] = [];
  while (segment.lastIndex < path.length) {
    const match = segment.exec(path);
    if (!match) return undefined;
    out.push(match[1] ?? (match[2] !== undefined ? (JSON.parse(match[2]) as string) : match[3]!));
  }
  return out;
}

/** Whether the parent of the place `path` names exists in `value` (the place itself may be a missing field). */
function parentExists(value: unknown, segments: string[]): boolean {
  let current: unknown = value;
  for (const segment of segments.slice(0, -1)) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, segment)) return false;
    current = (current as Record<string, unknown>)[segment];
  }
  return true;
}

function checkAnswer(input: unknown): void {
  const result = parseOperation(input, CONFIG);
  if (result.ok) {
    // What the producer writes to Redis, the worker reads and validates again: the same operation.
    const again = parseOperation(JSON.parse(JSON.stringify(result.operation)), CONFIG);
    expect(again.ok ? JSON.stringify(again.operation) : again.issues).toEqual(JSON.stringify(result.operation));
    expect(limitKeysOf(result.operation).length).toBeGreaterThan(0);
    return;
  }
  expect(result.issues.length).toBeGreaterThan(0);
  for (const issue of result.issues) {
    expect(typeof issue.path).toBe('string');
    expect(issue.message.trim(), `issue at ${issue.path}`).not.toBe('');
    const segments = segmentsOf(issue.path);
    expect(segments, `issue path ${JSON.stringify(issue.path)} reads one way`).toBeDefined();
    if (issue.path === '') continue;
    expect(FIELDS.includes(segments![0]!) || Object.hasOwn(input as object, segments![0]!), `issue path ${issue.path}`).toBe(true);
    expect(parentExists(input, segments!), `issue path ${JSON.stringify(issue.path)} leads into the input`).toBe(true);
  }
}

describe('parseOperation, property-based', () => {
  it('answers any JSON value with an operation or with issues that name a path and a message; never throws', () => {
    fc.assert(fc.property(json, checkAnswer), { numRuns: 2_000 });
  });

  it('answers objects made of operation fields holding any JSON the same way', () => {
    const field = fc.constantFrom(...FIELDS, 'methd', 'URL');
    fc.assert(fc.property(fc.dictionary(field, json, { maxKeys: 6 }), checkAnswer), { numRuns: 2_000 });
  });

  it('answers valid operations with one bad field the same way', () => {
    fc.assert(
      fc.property(validOperation, fc.constantFrom(...FIELDS), json, (operation, field, value) =>
        checkAnswer({ ...operation, [field]: value }),
      ),
      { numRuns: 1_500 },
    );
  });

  it('accepts every valid operation, upper-cases its method, and reads it back the same after JSON', () => {
    fc.assert(
      fc.property(validOperation, (operation) => {
        const result = parseOperation(operation, CONFIG);
        // A "__proto__" name cannot be kept: it is refused, by its path, rather than lost.
        const lost = (['query', 'form', 'headers'] as const).filter((field) =>
          Object.hasOwn((operation as unknown as Record<string, object | undefined>)[field] ?? {}, '__proto__'),
        );
        if (lost.length > 0) {
          expect(result.ok ? [] : result.issues.map((issue) => issue.path)).toEqual(lost.map((field) => `${field}.__proto__`));
          return;
        }
        expect(result.ok ? [] : result.issues).toEqual([]);
        if (!result.ok) return;
        expect(result.operation.method).toBe(operation.method.toUpperCase());
        expect(result.operation.url).toBe(operation.url);
        // Nothing given is lost on the way in (JSON.stringify lists own keys, "__proto__" too).
        for (const field of ['query', 'form', 'headers', 'json', 'meta', 'multipart', 'limitKey'] as const) {
          expect(JSON.stringify(result.operation[field]), field).toBe(JSON.stringify((operation as Record<string, unknown>)[field]));
        }
        const again = parseOperation(JSON.parse(JSON.stringify(result.operation)), CONFIG);
        expect(again.ok && JSON.stringify(again.operation)).toBe(JSON.stringify(result.operation));
      }),
      { numRuns: 1_500 },
    );
  });
});
