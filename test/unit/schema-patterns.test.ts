/**
 * `expect.schema` patterns are written by whoever enqueues and matched against text a target sends:
 * none may make validation backtrack catastrophically. Each hostile check runs under a vm timeout,
 * which interrupts a running regular expression, so a regression fails the test instead of hanging it.
 */
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { runsLinearOnV8 } from '../../src/operation/backtrack-safe.js';
import { checkJson, jsonSchemaProblems } from '../../src/operation/json-schema.js';
import { MAX_PATTERN_PROGRAM, linearRegExp } from '../../src/operation/linear-regexp.js';
import { parseOperation } from '../../src/operation/parse-operation.js';

const CONFIG = parseSluiceConfig({ allowedHosts: ['api.example.com'] });
/** Far beyond what a linear engine needs (milliseconds), far below a catastrophic backtrack. */
const BOUND_MS = 10_000;

/** Runs `fn`, failing with a clear error if it takes longer than `ms` (a running regexp included). */
function within<T>(ms: number, fn: () => T): T {
  const box: { fn: () => T; result?: T } = { fn };
  try {
    vm.runInNewContext('box.result = box.fn()', { box }, { timeout: ms });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new Error(`still running after ${ms} ms`);
    throw error;
  }
  return box.result as T;
}

function issuesOf(schema: unknown) {
  const result = parseOperation({ method: 'GET', url: 'https://api.example.com/x', expect: { schema } }, CONFIG);
  return result.ok ? [] : result.issues;
}

const long = (unit: string, times: number, tail = '!'): string => unit.repeat(times) + tail;

describe('hostile patterns finish in linear time', () => {
  it.each([
    ['nested quantifiers', '^(a+)+$', long('a', 50_000)],
    ['overlapping alternation', '^(a|aa)*$', long('a', 50_000)],
    ['overlapping alternation of classes', '^(\\w|\\d)*$', long('1', 50_000)],
    ['words and optional spaces', '^(\\w+\\s?)*$', long('word ', 20_000)],
    ['quantified overlap without anchors', '(x+x+)+y', long('x', 50_000, '')],
    ['a quadratic scan of every start position', '[a-z]+\\d', long('a', 300_000, '')],
  ])('in pattern: %s (%s)', (_, pattern, text) => {
    const schema = { type: 'object', properties: { name: { type: 'string', pattern } } };
    expect(jsonSchemaProblems(schema)).toEqual([]);
    const mismatch = within(BOUND_MS, () => checkJson(schema, JSON.stringify({ name: text })));
    expect(mismatch?.errors).toEqual([`/name: must match pattern "${pattern}"`]);
  });

  it('in patternProperties: every key is matched in linear time', () => {
    const schema = { type: 'object', patternProperties: { '^(a|a)*$': { type: 'integer' } }, additionalProperties: false };
    const body = JSON.stringify({ [long('a', 50_000)]: 1, [long('a', 20)]: 2 });
    const mismatch = within(BOUND_MS, () => checkJson(schema, body));
    expect(mismatch?.total).toBe(2);
    expect(mismatch?.errors[1]).toBe('(root): must NOT have additional properties ("aaaaaaaaaaaaaaaaaaaa!")');
    // A long key that matches is held to the schema it names.
    expect(within(BOUND_MS, () => checkJson(schema, JSON.stringify({ [long('a', 50_000, '')]: 1 })))).toBeUndefined();
  });

  it('in propertyNames', () => {
    const schema = { type: 'object', propertyNames: { pattern: '^([a-z]+)*$' } };
    const mismatch = within(BOUND_MS, () => checkJson(schema, JSON.stringify({ [long('abc', 20_000)]: true, ok: 1 })));
    expect(mismatch?.errors).toEqual(['(root): must match pattern "^([a-z]+)*$"', '(root): property name must be valid']);
  });
});

describe('format "url" on what a target sends', () => {
  const URL = { type: 'string', format: 'url' };

  it.each([`http://${'0:'.repeat(100_000)}!`, `http://a@${'a:'.repeat(60_000)}!`])(
    'finishes in linear time on a long run of user:password-like text (%#)',
    (text) => {
      const mismatch = within(BOUND_MS, () => checkJson(URL, JSON.stringify(text)));
      expect(mismatch?.errors).toEqual(['(root): must match format "url"']);
    },
  );

  it.each([
    ['http://userid:password@example.com:8080/a?b=c', true],
    ['http://userid@example.com', true],
    ['https://142.42.1.1/', true],
    ['ftp://foo.bar/baz', true],
    ['http://10.1.1.1', false],
    ['http://localhost', false],
    // An `@` in the userinfo is percent-encoded (RFC 3986): a raw one no longer passes.
    ['http://user:pa@ss@example.com', false],
    ['http://user:pa%40ss@example.com', true],
  ])('%s: %s', (url, valid) => {
    expect(checkJson(URL, JSON.stringify(url)) === undefined).toBe(valid);
  });
});

describe('patterns refused at enqueue, at their place in the schema', () => {
  it.each([
    [
      { properties: { name: { pattern: '^(a+)\\1$' } } },
      'expect.schema.properties.name.pattern',
      /^backreferences \(\\1…\) are not supported/,
    ],
    [{ patternProperties: { '^(?<x>a)\\k<x>$': {} } }, 'expect.schema.patternProperties.^(?<x>a)\\k<x>$', /^backreferences \(\\k…\)/],
    [{ propertyNames: { pattern: '^(?!tmp)' } }, 'expect.schema.propertyNames.pattern', /^lookahead and lookbehind/],
    [{ items: [{}, { pattern: '(?<=\\$)\\d+' }] }, 'expect.schema.items[1].pattern', /^lookahead and lookbehind/],
    [
      { definitions: { code: { pattern: '^(ab){1001}$' } } },
      'expect.schema.definitions.code.pattern',
      /RE2.*cannot run this one.*repeat count/,
    ],
    [
      { anyOf: [{ pattern: '^(?:[a-z]{1,100}\\d?){1,10}$' }] },
      'expect.schema.anyOf[0].pattern',
      new RegExp(`^pattern is too complex: it compiles to \\d+ RE2 instructions, at most ${MAX_PATTERN_PROGRAM}`),
    ],
    [
      { not: { pattern: '([a-z]{1,1000})'.repeat(5) } },
      'expect.schema.not.pattern',
      /^pattern is too complex: its length and counted repeats \(\{n,m\}\) add up to 5075, at most 4000$/,
    ],
  ])('%j', (schema, path, message) => {
    const issues = issuesOf(schema);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe(path);
    expect(issues[0]!.message).toMatch(message);
  });

  it('lists every refused pattern, and leaves data that looks like one alone', () => {
    const schema = {
      properties: { a: { pattern: '(a)\\1' }, b: { pattern: '(?=b)' }, c: { const: { pattern: '(c)\\1' }, enum: [{ pattern: '(?=)' }] } },
    };
    expect(issuesOf(schema).map((issue) => issue.path)).toEqual([
      'expect.schema.properties.a.pattern',
      'expect.schema.properties.b.pattern',
    ]);
  });

  it('names an invalid ECMAScript pattern at its place', () => {
    expect(issuesOf({ properties: { id: { pattern: '^(' } } })).toEqual([
      {
        path: 'expect.schema.properties.id.pattern',
        message: 'not a valid regular expression: Invalid regular expression: /^(/u: Unterminated group',
      },
    ]);
  });
});

describe('which engine runs a pattern', () => {
  it.each([
    '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    '^[A-Z]{3}-\\d{4,6}$',
    '^[a-z][a-z0-9_-]*$',
    '^[^@\\s]+@',
    '^\\S+$',
    '^.*$',
    '^\\S*\u3000',
    '^x-',
    'foo',
    '\\d{3}-\\d{4}',
    '^\\+?[1-9]\\d{1,14}$',
    '^$',
    '',
  ])('V8 for %j: no atom can give back what a later one could take', (pattern) => {
    expect(runsLinearOnV8(pattern)).toBe(true);
  });

  it.each([
    '^(a+)+$',
    '^a*a*$',
    '^\\d*-?\\d+$',
    '^\\w+\\s?\\w+$',
    '^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$',
    '^.*x$',
    '^\\s*\u3000',
    '[a-z]+x',
    'a{33}',
    '^a+?b',
    '^(?:ab)+$',
    '^a|b$',
    '^\\bword',
    '^\\u0041+$',
    `^${'ab'.repeat(150)}$`,
  ])('RE2 for %j', (pattern) => {
    expect(runsLinearOnV8(pattern)).toBe(false);
  });

  it("RE2 keeps ECMAScript's meaning of . and \\s", () => {
    const both = (pattern: string, text: string) => [linearRegExp(pattern, 'u').test(text), new RegExp(pattern, 'u').test(text)];
    expect(runsLinearOnV8('^(\\s|x)+$')).toBe(false);
    expect(both('^(\\s|x)+$', 'x\u00a0\u3000x')).toEqual([true, true]);
    expect(both('^([\\s]|x)+$', 'x\u2028')).toEqual([true, true]);
    expect(both('^(\\S|x)+$', 'x\u00a0')).toEqual([false, false]);
    expect(both('^(.|x)+$', 'a\rb')).toEqual([false, false]);
    expect(both('^(.|x)+$', 'a😀b')).toEqual([true, true]);
    expect(both('^(\\.|x)+$', '.x.')).toEqual([true, true]);
    // Like RegExp.test, a search: anywhere in the text unless anchored.
    expect(both('o(b|c)+x', 'foobcx!')).toEqual([true, true]);
    expect(both('^o(b|c)+x', 'foobcx!')).toEqual([false, false]);
  });
});
