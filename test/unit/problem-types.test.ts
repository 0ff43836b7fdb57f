import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROBLEM_TITLES, problemDetails, problemType } from '../../src/server/problem-types.js';

describe('problem details of an error code', () => {
  it.each([
    ['VALIDATION_FAILED', '/problems/validation-failed'],
    ['NOT_FOUND', '/problems/not-found'],
    ['TOO_MANY_AUTH_FAILURES', '/problems/too-many-auth-failures'],
    ['INTERNAL', '/problems/internal'],
  ])('names the type of %s %s', (code, type) => {
    expect(problemType(code)).toBe(type);
  });

  it('gives every known code a short title of its own', () => {
    const titles = Object.values(PROBLEM_TITLES);
    expect(new Set(titles).size).toBe(titles.length);
    for (const title of titles) expect(title.length).toBeLessThanOrEqual(60);
  });

  it('has a title for every code the server answers with', async () => {
    const dir = join(import.meta.dirname, '../../src/server');
    const files = (await readdir(dir, { recursive: true })).filter((file) => file.endsWith('.ts'));
    const codes = new Set<string>();
    for (const file of files) {
      const text = await readFile(join(dir, file), 'utf8');
      for (const match of text.matchAll(/new ApiError\(\s*\d{3},\s*'([A-Z_]+)'/g)) codes.add(match[1]!);
    }
    expect(codes.size).toBeGreaterThan(10);
    expect([...codes].filter((code) => !(code in PROBLEM_TITLES))).toEqual([]);
  });

  it.each([
    [409, 'CIRCUIT_OFF', 'The limit key has no circuit breaker'],
    [405, 'METHOD_NOT_ALLOWED', 'Method not allowed on this path'],
    [409, 'WOULD_STRAND_BATCHES', 'The batches would never finish'],
    [409, 'REPLAY_DEAD_LETTERS_INSTEAD', 'Replay dead letters instead'],
    // A code with no title of its own gets its status's reason phrase.
    [418, 'SOMETHING_NEW', "I'm a Teapot"],
    [599, 'SOMETHING_ELSE', 'Error'],
  ])('answers %i %s with the title "%s"', (status, code, title) => {
    expect(problemDetails(status, code, 'what happened')).toEqual({
      type: problemType(code),
      title,
      status,
      detail: 'what happened',
      code,
      message: 'what happened',
    });
  });

  it('keeps instance and the validation issues, after the RFC 9457 members', () => {
    const errors = [{ index: 2, line: 3, path: 'url', message: 'expected an http(s) URL' }];
    const problem = problemDetails(400, 'VALIDATION_FAILED', '1 of 3 operations are invalid', { instance: '/v1/operations', errors });
    expect(Object.keys(problem)).toEqual(['type', 'title', 'status', 'detail', 'instance', 'code', 'message', 'errors']);
    expect(problem.errors).toBe(errors);
  });
});
