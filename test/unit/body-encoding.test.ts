import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/server/api-errors.js';
import { requestCoding, type BodyEncoding } from '../../src/server/body-encoding.js';

const ALL: BodyEncoding[] = ['gzip', 'deflate', 'br'];
const WHERE = 'POST /v1/operations';

describe('requestCoding: the coding a Content-Encoding header asks for', () => {
  it.each<[string | undefined, BodyEncoding | null]>([
    [undefined, null],
    ['', null],
    ['identity', null],
    ['gzip', 'gzip'],
    ['GZIP', 'gzip'],
    [' gzip ', 'gzip'],
    ['gzip, identity', 'gzip'],
    // RFC 9110 §8.4.1.3: x-gzip is gzip.
    ['x-gzip', 'gzip'],
    ['X-Gzip', 'gzip'],
    ['deflate', 'deflate'],
    ['br', 'br'],
  ])('%j → %s', (header, coding) => {
    expect(requestCoding(header, ALL, WHERE)).toBe(coding);
  });

  it.each<[string, readonly BodyEncoding[], string, string]>([
    [
      'zstd',
      ALL,
      'Content-Encoding zstd is not supported: POST /v1/operations takes Content-Encoding gzip, deflate, br or none',
      'gzip, deflate, br',
    ],
    [
      'gzip, gzip',
      ALL,
      'Content-Encoding gzip, gzip is not supported: POST /v1/operations takes Content-Encoding gzip, deflate, br or none',
      'gzip, deflate, br',
    ],
    [
      'compress',
      ALL,
      'Content-Encoding compress is not supported: POST /v1/operations takes Content-Encoding gzip, deflate, br or none',
      'gzip, deflate, br',
    ],
    ['x-gzip', [], 'Content-Encoding x-gzip is not supported: POST /v1/operations takes no Content-Encoding', 'identity'],
  ])('refuses %j with 415 and Accept-Encoding', (header, accepted, message, acceptEncoding) => {
    let thrown: unknown;
    try {
      requestCoding(header, accepted, WHERE);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ApiError);
    const error = thrown as ApiError;
    expect([error.statusCode, error.code, error.message]).toEqual([415, 'UNSUPPORTED_CONTENT_ENCODING', message]);
    expect(error.headers).toEqual({ 'accept-encoding': acceptEncoding });
  });
});
