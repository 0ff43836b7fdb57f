import { describe, expect, it } from 'vitest';
import { EMPTY_CONFIG } from '../../src/config/sluice-config.js';
import { MAX_NESTING, nestingIssue } from '../../src/operation/nesting.js';
import { parseOperation } from '../../src/operation/parse-operation.js';
import { compileRowTemplate } from '../../src/operation/row-template.js';

/** `levels` arrays, one inside the other, built without recursion. */
function nested(levels: number): unknown {
  let value: unknown = [];
  for (let level = 1; level < levels; level += 1) value = [value];
  return value;
}

const op = (json: unknown) => ({ method: 'POST', url: 'https://api.example.com/deep', json });
const TOO_DEEP = 'objects and arrays nested more than 64 levels deep (the operation is the first)';

describe('nesting limit', () => {
  it('takes an operation 64 levels deep (the operation is the first) and refuses 65, naming where', () => {
    expect(MAX_NESTING).toBe(64);
    const config = { ...EMPTY_CONFIG, allowedHosts: ['api.example.com'] };
    expect(parseOperation(op(nested(63)), config).ok).toBe(true);
    expect(parseOperation(op(nested(64)), config)).toEqual({
      ok: false,
      issues: [{ path: 'json[0][0][0][0][0][0][0]…', message: TOO_DEEP }],
    });
  });

  it('refuses 5,000 and 1,000,000 levels with an issue, never "Maximum call stack size exceeded"', () => {
    for (const levels of [5_000, 1_000_000]) {
      const deep = JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`) as unknown;
      expect(() => JSON.stringify(deep)).toThrow(RangeError);
      expect(parseOperation(op(deep), EMPTY_CONFIG)).toEqual({
        ok: false,
        issues: [{ path: 'json[0][0][0][0][0][0][0]…', message: TOO_DEEP }],
      });
      const inMeta = { method: 'GET', url: 'https://api.example.com/x', meta: { a: { b: deep } } };
      expect(parseOperation(inMeta, EMPTY_CONFIG)).toMatchObject({ ok: false, issues: [{ path: 'meta.a.b[0][0][0][0][0]…' }] });
    }
  });

  it('names short paths whole, objects by key', () => {
    expect(nestingIssue({ a: { b: { c: {} } } }, 3)).toEqual({ path: 'a.b.c', message: expect.stringContaining('more than 3 levels') });
    expect(nestingIssue({ a: [1, 'x', { b: 2 }] }, 3)).toBeUndefined();
    expect(nestingIssue('a string')).toBeUndefined();
  });

  it('a CSV template nested too deep is refused before any row is read', () => {
    const template = { method: 'POST', url: '/c', target: 't', json: nested(5_000) };
    expect(compileRowTemplate(template, ['id'])).toEqual({ ok: false, message: `json[0][0][0][0][0][0][0]…: ${TOO_DEEP}` });
  });
});
