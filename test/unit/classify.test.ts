import { describe, expect, it } from 'vitest';
import { NetworkError, RequestError, ShutdownAbortError, SluiceError, TimeoutError } from '../../src/errors.js';
import { RETRYABLE_STATUSES, classifyError, classifyStatus } from '../../src/http/classify.js';

describe('classifyStatus', () => {
  it.each([200, 201, 202, 204, 299])('counts %i as success by default', (status) => {
    expect(classifyStatus(status, undefined)).toEqual({ kind: 'success' });
  });

  it('counts a 3xx as a permanent failure by default (redirects are not followed)', () => {
    expect(classifyStatus(301, undefined)).toEqual({ kind: 'permanent', code: 'HTTP_301' });
    expect(classifyStatus(304, undefined)).toEqual({ kind: 'permanent', code: 'HTTP_304' });
  });

  it('uses expect.status instead of 2xx when given', () => {
    expect(classifyStatus(404, [404])).toEqual({ kind: 'success' });
    expect(classifyStatus(200, [404])).toEqual({ kind: 'permanent', code: 'HTTP_200' });
    expect(classifyStatus(204, [200, 204])).toEqual({ kind: 'success' });
    expect(classifyStatus(201, [200, 204])).toEqual({ kind: 'permanent', code: 'HTTP_201' });
  });

  it('counts an expected retryable status as success', () => {
    expect(classifyStatus(503, [503])).toEqual({ kind: 'success' });
  });

  it('still retries a retryable status that expect.status does not list', () => {
    expect(classifyStatus(503, [404], 1_000)).toEqual({ kind: 'retry', retryAfterMs: 1_000, code: 'HTTP_503' });
  });

  it.each([408, 425, 429, 500, 502, 503, 504])('retries %i, passing Retry-After through', (status) => {
    expect(classifyStatus(status, undefined, 2_500)).toEqual({ kind: 'retry', retryAfterMs: 2_500, code: `HTTP_${status}` });
    expect(classifyStatus(status, undefined)).toEqual({ kind: 'retry', retryAfterMs: undefined, code: `HTTP_${status}` });
    expect(RETRYABLE_STATUSES.has(status)).toBe(true);
  });

  it.each([400, 401, 403, 404, 405, 409, 410, 413, 422, 501, 505])('fails %i permanently', (status) => {
    expect(classifyStatus(status, undefined, 5_000)).toEqual({ kind: 'permanent', code: `HTTP_${status}` });
    expect(RETRYABLE_STATUSES.has(status)).toBe(false);
  });

  it('retries exactly the documented statuses', () => {
    expect([...RETRYABLE_STATUSES].sort((a, b) => a - b)).toEqual([408, 425, 429, 500, 502, 503, 504]);
  });
});

describe('classifyError', () => {
  it.each(['connect', 'headers', 'body', 'total'] as const)('retries a %s TimeoutError', (phase) => {
    expect(classifyError(new TimeoutError(phase, 100))).toEqual({
      kind: 'retry',
      retryAfterMs: undefined,
      code: `TIMEOUT_${phase.toUpperCase()}`,
    });
  });

  it('retries a NetworkError, keeping its code', () => {
    expect(classifyError(new NetworkError('refused', 'ECONNREFUSED'))).toEqual({
      kind: 'retry',
      retryAfterMs: undefined,
      code: 'ECONNREFUSED',
    });
  });

  it('fails a RequestError permanently', () => {
    expect(classifyError(new RequestError('bad header'))).toEqual({ kind: 'permanent', code: 'REQUEST_INVALID' });
  });

  it('marks a ShutdownAbortError as aborted (not a failure)', () => {
    expect(classifyError(new ShutdownAbortError())).toEqual({ kind: 'aborted' });
  });

  it.each([
    ['a plain Error', new Error('boom')],
    ['a TypeError', new TypeError('x is undefined')],
    ['a generic SluiceError', new SluiceError('odd', { code: 'ODD' })],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
  ])('retries %s as UNKNOWN', (_what, error) => {
    expect(classifyError(error)).toEqual({ kind: 'retry', retryAfterMs: undefined, code: 'UNKNOWN' });
  });
});
